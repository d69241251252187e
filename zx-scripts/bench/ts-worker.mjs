// Runs a TypeScript module in a worker thread through tsx: Node 20's workers do not take the parent's module loader.
import { workerData } from 'node:worker_threads';
import { tsImport } from 'tsx/esm/api';

await tsImport(workerData.module, import.meta.url);
