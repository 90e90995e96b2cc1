// The embedding API: everything the CLI does, for Node hosts that run bgproxy inside
// their own process (mount handleRequest/handleUpgrade on your http.Server).
export { Bgproxy, type BgproxyOptions, type CanaryStatus, type ColorStatus, type CutoverOptions, type CutoverResult, type ReloadPlan, type Status, type TrafficStatus } from './bgproxy.js';
export { type Color, type Config, loadConfig, parseConfig, type Role } from './config.js';
export { controlRequest } from './control/client.js';
export { BgError, type BgErrorCode, isBgError } from './errors.js';
export { initRoot } from './layout/init.js';
export { createLogger } from './log.js';
export { type Running, type ServeOptions, startServer } from './serve.js';
export type { CertInfo, OrderStatus } from './tls/acme.js';
export type { CertsStatus, OwnCertStatus } from './tls/tls-front.js';
export { hashPassword } from './traffic/passwd.js';
