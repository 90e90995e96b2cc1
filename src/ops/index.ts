// The operations Bgproxy runs, one file each (Bgproxy keeps the state and the wiring).
export { status } from './status.js';
export { cutover, release } from './cutover.js';
export { autoRollback, rollback } from './rollback.js';
export { canary } from './canary.js';
export { deploy, interruptDeploy } from './deploy.js';
export { restartColor } from './restart.js';
