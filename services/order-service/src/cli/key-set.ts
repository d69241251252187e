// npm run -w services/order-service key-set -- PUBLIC_KEY.pem...
// Prints the key set (JWKS, RFC 7517) of these RSA public keys, each with its RFC 7638 thumbprint as its key id: what
// an identity provider publishes, and what the order service verifies tokens with (auth.keySet). The lab's stand-in
// provider publishes its key this way (roles/order_service); a real deployment copies its provider's own key set.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { keySetOf, publicKeyFromPem } from '../auth/jwt.ts';

const USAGE = 'usage: key-set PUBLIC_KEY.pem... (prints the JWKS of these RSA public keys)';

function main(): number {
  let positionals: string[];
  try {
    ({ positionals } = parseArgs({ options: {}, allowPositionals: true, strict: true }));
  } catch (error) {
    process.stderr.write(`key-set: ${error instanceof Error ? error.message : String(error)}\n${USAGE}\n`);
    return 2;
  }
  if (positionals.length === 0) {
    process.stderr.write(`key-set: name at least one public key file\n${USAGE}\n`);
    return 2;
  }
  try {
    process.stdout.write(keySetOf(positionals.map((path) => {
      try {
        const pem = readFileSync(path, 'utf8');
        publicKeyFromPem(pem);
        return pem;
      } catch (error) {
        throw new Error(`${path}: ${error instanceof Error ? error.message : String(error)}`);
      }
    })));
    return 0;
  } catch (error) {
    process.stderr.write(`key-set: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

process.exitCode = main();
