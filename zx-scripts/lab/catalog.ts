// The lab's demo catalog: what a staff user puts into the order service through the API (PUT /api/v1/products/:id)
// once the stack is up (`npm run lab -- up`), so that shoppers, the load tests and the drills have something to buy.
// Stock is large: the drills and load tests order the same products for many minutes. Re-putting it changes nothing
// but the stock figures back to these.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stateDir } from './state.ts';
import { mintToken, type Role } from '@oms/order-service/auth/jwt';

export interface LabProduct {
  id: string;
  name: string;
  category: string;
  priceCents: number;
  stock: number;
}

export const LAB_CATALOG: readonly LabProduct[] = [
  { id: 'BOOK-0001', name: "The Site Reliability Workbook (O'Reilly)", category: 'books', priceCents: 4299, stock: 1_000_000 },
  { id: 'BOOK-0002', name: 'Designing Data-Intensive Applications', category: 'books', priceCents: 3999, stock: 1_000_000 },
  { id: 'MUG-0001', name: 'Mug "It works on my machine"', category: 'kitchen', priceCents: 1250, stock: 1_000_000 },
  { id: 'TEE-0001', name: 'T-shirt, 99.999 % cotton', category: 'clothing', priceCents: 1990, stock: 1_000_000 },
  { id: 'CABLE-0001', name: 'Patch cable Cat 6A, 2 m', category: 'hardware', priceCents: 690, stock: 10_000_000 },
];

/** The product the drills' order load buys (one unit per order). */
export const DRILL_PRODUCT = 'CABLE-0001';

/** The lab's stand-in identity provider (inventories/lab/group_vars/all/services.yml). */
export const LAB_IDP = { issuer: 'oms-lab-idp', audience: 'oms-api', keyFile: 'lab-idp.key' } as const;
/** The lab IdP's private key, made by the first site.yml run (roles/order_service). */
export const labIdpKey = (): string => join(stateDir, 'secrets', LAB_IDP.keyFile);

/**
 * A bearer token of the lab's identity provider, signed with its key (a file); customers get an email claim (they need
 * one to order: the order is confirmed to that address).
 */
export function labToken(keyFile: string, subject: string, role: Role): string {
  return mintToken({
    privateKeyPem: readFileSync(keyFile, 'utf8'), issuer: LAB_IDP.issuer, audience: LAB_IDP.audience,
    subject, role, ...(role === 'customer' ? { email: `${subject}@shop.example` } : {}), ttlSeconds: 6 * 3600,
  });
}
