// One error class for everything a caller may want to match on. The code is the
// contract; the message is for people and may change.
export type BgErrorCode =
  | 'BG_CONFIG' // bgproxy.json or a flag is invalid (exit 2)
  | 'BG_USAGE' // a command was called wrongly (exit 2)
  | 'BG_NO_SERVER' // no `bgproxy serve` answers on the control socket
  | 'BG_ALREADY_RUNNING' // a second serve on the same root
  | 'BG_UNHEALTHY' // the color a cutover would make live does not answer its health check
  | 'BG_LAYOUT' // the root on disk is missing or cannot be changed
  | 'BG_LOCKED' // another deploy/cutover/rollback holds the root's lock
  | 'BG_DEPLOY' // a deploy step failed
  | 'BG_HOOK' // a release hook failed
  | 'BG_PROCESS' // starting/stopping an app process failed
  | 'BG_NGINX' // nginx test/reload/verify failed
  | 'BG_CONTROL' // a malformed control request or response
  | 'BG_UNREACHABLE' // a fleet server cannot be reached over ssh
  | 'BG_FLEET' // a fleet operation failed on a server, or its gate was not opened
  | 'BG_TLS' // a certificate could not be loaded, issued or renewed
  | 'BG_STATE'; // the operation makes no sense in the current state

export class BgError extends Error {
  readonly code: BgErrorCode;
  /** Extra lines (e.g. the tail of a failing command's output) shown after the message. */
  readonly detail: string | undefined;
  constructor(code: BgErrorCode, message: string, options?: { cause?: unknown; detail?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BgError';
    this.code = code;
    this.detail = options?.detail;
  }
}

export function isBgError(err: unknown, code?: BgErrorCode): err is BgError {
  return err instanceof BgError && (code === undefined || err.code === code);
}

/** Exit code of the CLI for an error: 2 for bad usage or config, 1 for everything else. */
export function exitCodeFor(err: unknown): number {
  return isBgError(err, 'BG_CONFIG') || isBgError(err, 'BG_USAGE') ? 2 : 1;
}
