// Bearer authentication: every /orders request carries an RS256 JWT; the principal is kept on the request.
import type { NextFunction, Request, Response } from 'express';
import { TokenError, verifyToken, type JwtSettings, type Principal, type Role } from '../auth/jwt.ts';
import { ApiError } from './problem.ts';

const principals = new WeakMap<Request, Principal>();

export function authenticate(settings: JwtSettings) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const header = req.headers.authorization;
    const match = header === undefined ? null : /^Bearer ([A-Za-z0-9._-]+)$/.exec(header);
    if (!match?.[1]) throw new ApiError('unauthorized', header === undefined ? 'a bearer token is required' : 'the Authorization header must be "Bearer <token>"');
    try {
      principals.set(req, verifyToken(match[1], settings));
    } catch (error) {
      if (error instanceof TokenError) throw new ApiError('unauthorized', error.message);
      throw error;
    }
    next();
  };
}

/** The authenticated principal (authenticate ran before), optionally required to have one of `roles`. */
export function principal(req: Request, ...roles: Role[]): Principal {
  const p = principals.get(req);
  if (!p) throw new ApiError('unauthorized', 'a bearer token is required');
  if (roles.length > 0 && !roles.includes(p.role)) throw new ApiError('forbidden', `this needs the ${roles.join(' or ')} role`);
  return p;
}
