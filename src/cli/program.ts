// The bgproxy command tree: every subcommand registered, none run. Separate from main.ts (which
// runs the command line when loaded) so tests can read each command's options, as --help does.
import { Command } from 'commander';
import { VERSION } from '../version.js';
import { registerApps } from './apps.js';
import { registerCerts } from './certs.js';
import { registerFleet } from './fleet.js';
import { registerInit } from './init.js';
import { registerOps } from './ops.js';
import { registerRelease } from './release.js';
import { installRootOption } from './root.js';
import { registerServe } from './serve.js';
import { registerTraffic } from './traffic.js';
import { registerVerify } from './verify.js';

export function buildProgram(): Command {
  const program = new Command('bgproxy')
    .description('Zero-downtime blue/green releases on one server')
    .version(VERSION, '-V, --version')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`bgproxy: ${str.replace(/^error: /, '').trim()}\n`) });
  installRootOption(program);
  registerInit(program);
  registerServe(program);
  registerOps(program);
  registerRelease(program);
  registerTraffic(program);
  registerApps(program);
  registerCerts(program);
  registerVerify(program);
  registerFleet(program);
  return program;
}
