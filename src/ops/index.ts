// The operations Bgproxy runs, one file each (Bgproxy keeps the state and the wiring).
export { canary } from './canary.js';
export { cutover, release } from './cutover.js';
export { deploy, interruptDeploy } from './deploy.js';
export { restartColor, restartForRelease, startColor } from './restart.js';
export { autoRollback, rollback } from './rollback.js';
export { status } from './status.js';
export { stop, stopColor } from './stop.js';
