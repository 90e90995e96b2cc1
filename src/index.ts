// The embedding API: everything the CLI does, for Node hosts that run bgproxy inside
// their own process (mount handleRequest/handleUpgrade on your http.Server).
export { Bgproxy, type BgproxyOptions, type CutoverOptions, type CutoverResult, type ReloadPlan, type Status, type ColorStatus, type CanaryStatus, type TrafficStatus } from './bgproxy.js';
export { hashPassword } from './traffic/passwd.js';
export { type Color, type Config, type Role, loadConfig, parseConfig } from './config.js';
export { BgError, type BgErrorCode, isBgError } from './errors.js';
export { createLogger } from './log.js';
export { initRoot } from './layout/init.js';
export { startServer, type Running, type ServeOptions } from './serve.js';
export { controlRequest } from './control/client.js';
export type { CertsStatus, OwnCertStatus } from './tls/tls-front.js';
export type { OrderStatus, CertInfo } from './tls/acme.js';
