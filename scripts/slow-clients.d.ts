// Types of scripts/slow-clients.js (plain JS, shared by the bench and the tests).
export declare const GUNICORN: string | null;
export declare function gunicornArgs(port: number): string[];
export declare const RATE: number;
export declare function answers(port: number, path: string, timeoutMs: number, host: string): Promise<boolean>;
export declare function waitAnswers(port: number, host: string, timeoutMs?: number): Promise<void>;

export interface SlowClients {
  /** Bytes each client moved so far. */
  moved: number[];
  stop(): void;
}
export declare function slowReaders(port: number, n: number, opts: { host: string; path?: string }): SlowClients;
export declare function slowUploaders(port: number, n: number, opts: { host: string; bytes?: number; path?: string }): SlowClients;
export declare function ordinaryRequests(port: number, opts: { host: string; count?: number; withinMs?: number }): Promise<number>;
export declare function slowClientsRun(
  port: number,
  opts: { host: string; scenario: 'read' | 'upload'; clients?: number; sample?: () => void },
): Promise<{ answered: number; moved: number }>;
