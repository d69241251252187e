import { describe } from 'node:test';
import { monitoringTests } from './monitoring.ts';
import { tlsTests } from './tls.ts';
describe('only', () => { tlsTests(); monitoringTests(); });
