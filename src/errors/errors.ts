/**
 * One error base with a stable `code`, one subclass per kind. The API maps the kind to
 * Docker's status code and `{"message"}`; the registry server maps it to OCI error codes.
 * Messages put the context first ("image busybox:latest: ...") and wrap the cause.
 */
export type ErrorCode =
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'INVALID_ARGUMENT'
  | 'CONFLICT'
  | 'UNAVAILABLE'
  | 'NOT_IMPLEMENTED'
  | 'NOT_MODIFIED'
  | 'FORBIDDEN'
  | 'INTERNAL';

export class BerthError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export class NotFound extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NOT_FOUND', message, options);
  }
}

export class AlreadyExists extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ALREADY_EXISTS', message, options);
  }
}

export class InvalidArgument extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
  }
}

export class Conflict extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFLICT', message, options);
  }
}

export class Unavailable extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', message, options);
  }
}

export class NotImplemented extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NOT_IMPLEMENTED', message, options);
  }
}

/** Docker answers 304 when the container is already in the state asked for. */
export class NotModified extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NOT_MODIFIED', message, options);
  }
}

export class Forbidden extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FORBIDDEN', message, options);
  }
}

export function isBerthError(err: unknown): err is BerthError {
  return err instanceof BerthError;
}

/** The errno code of a Node system error, or undefined. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
