// npm run -w services/order-service mint-token -- --key PRIVATE_KEY.pem --sub cust-42 [--email ada@shop.example] [--role customer|staff]
//   [--issuer oms-lab-idp] [--audience oms-api] [--ttl 3600]
// Prints a bearer token signed as the lab's stand-in identity provider would. For the lab and the tests only: a real
// deployment gets its tokens from the shop's identity provider, and the service holds just its public key.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { mintToken } from '../auth/jwt.ts';

const USAGE = 'usage: mint-token --key PRIVATE_KEY.pem --sub SUBJECT [--email ADDRESS (customers need one to order)] [--role customer|staff] [--issuer ISS] [--audience AUD] [--ttl SECONDS]';

function main(): number {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        key: { type: 'string' },
        sub: { type: 'string' },
        email: { type: 'string' },
        role: { type: 'string', default: 'customer' },
        issuer: { type: 'string', default: 'oms-lab-idp' },
        audience: { type: 'string', default: 'oms-api' },
        ttl: { type: 'string', default: '3600' },
      },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`mint-token: ${error instanceof Error ? error.message : String(error)}\n${USAGE}\n`);
    return 2;
  }
  if (!values.key || !values.sub) {
    process.stderr.write(`mint-token: --key and --sub are required\n${USAGE}\n`);
    return 2;
  }
  if (values.role !== 'customer' && values.role !== 'staff') {
    process.stderr.write(`mint-token: --role must be customer or staff, got '${values.role}'\n${USAGE}\n`);
    return 2;
  }
  try {
    const token = mintToken({
      privateKeyPem: readFileSync(values.key, 'utf8'), subject: values.sub, role: values.role, ...(values.email === undefined ? {} : { email: values.email }),
      issuer: values.issuer, audience: values.audience, ttlSeconds: Number(values.ttl),
    });
    process.stdout.write(`${token}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`mint-token: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

process.exitCode = main();
