// What the services' HTTP servers share: listening (an error such as EADDRINUSE rejects instead of crashing), and the
// loopback-only operations listener (/livez, /readyz, /metrics in plain HTTP for the host's own checks: systemd,
// the deploy's readiness wait, a local Prometheus agent), which nothing off the host can reach.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';

export const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export const opsListenerSchema = z.strictObject({
  address: z.string().regex(LOOPBACK, 'must be a loopback address (the operations listener has no TLS)').default('127.0.0.1'),
  port: z.number().int().min(0).max(65535),
});

/** Listens and resolves with the port (the one the system picked for port 0). */
export async function listen(server: Server, port: number, address: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => { server.off('error', reject); resolve(); });
  });
  return (server.address() as AddressInfo).port;
}
