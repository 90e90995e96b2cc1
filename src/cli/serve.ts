import { writeSync } from 'node:fs';
import type { Command } from 'commander';
import type { LevelWithSilent } from 'pino';
import { loadConfig, parseListen, resolveRoot } from '../config.js';
import { BgError } from '../errors.js';
import { createLogger } from '../log.js';
import { activatedListenFds, type Running, startServer } from '../serve.js';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/** After a stop, how long the log gets to flush before serve exits regardless. */
const EXIT_GRACE_MS = 2_000;

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the proxy, the supervisor and the control socket in the foreground (JSON logs on stdout)')
    .option('--root <dir>', 'the root directory')
    .option('--listen <[host:]port>', 'override the listen address of bgproxy.json (e.g. 127.0.0.1:0)')
    .option('--log-level <level>', `one of ${LEVELS.join(', ')}`, 'info')
    .option('--no-access-log', 'do not log one line per request')
    .action(async (f: { root?: string; listen?: string; logLevel: string; accessLog: boolean }) => {
      if (!LEVELS.includes(f.logLevel)) throw new BgError('BG_USAGE', `--log-level must be one of ${LEVELS.join(', ')}`);
      const root = resolveRoot(f.root);
      const listen = f.listen === undefined ? null : parseListen(f.listen, '--listen');
      // At start and at each reload: bgproxy.json, with the --listen override kept.
      const readConfig = () => {
        const c = loadConfig(root);
        return listen ? Object.freeze({ ...c, listen }) : c;
      };
      const config = readConfig();
      const logger = createLogger({ level: f.logLevel as LevelWithSilent });
      // A bug that escapes every handler: say so where systemd's journal sees it (the JSON
      // log is asynchronous), then exit so the service manager restarts serve. The apps keep
      // running in their own process groups; the next serve stops them before starting its own.
      process.on('uncaughtException', (err) => {
        logger.fatal({ event: 'crash', err }, 'uncaught exception: exiting');
        writeSync(2, `bgproxy serve: uncaught exception: ${err.stack ?? err}\n`);
        process.exit(70);
      });
      // Under a systemd .socket unit the listening socket is passed in (and outlives us).
      const activated = activatedListenFds();
      const listenFd = activated?.http ?? null;
      const tlsListenFd = activated?.https ?? null;
      if (tlsListenFd !== null && !config.tls) throw new BgError('BG_USAGE', 'systemd passed an "https" socket but bgproxy.json has no tls');
      if (listenFd !== null && config.mode === 'nginx') logger.warn({ event: 'activation-ignored' }, 'nginx mode has no HTTP listener: the socket systemd passed is not used');
      // Signals count from now, also while serve starts: SIGHUP then reloads once it is up,
      // SIGTERM/SIGINT stop it once it is up (the default action would leave the apps behind).
      let running: Running | null = null;
      let reloadPending = false;
      const reload = (): void => {
        if (!running) {
          reloadPending = true;
          return;
        }
        running.reload().then(
          (plan) => {
            if (plan.changed.length === 0 && plan.notes.length === 0) logger.info({ event: 'reload', changed: [] }, 'config unchanged');
          },
          (err: Error) => logger.error({ event: 'reload-failed', error: err.message }, `reload refused: ${err.message}`),
        );
      };
      // SIGHUP (systemd's ExecReload) reloads bgproxy.json; the outcome goes to the log.
      process.on('SIGHUP', () => {
        logger.info({ event: 'signal', signal: 'SIGHUP' }, 'received SIGHUP: reloading the config');
        reload();
      });
      // A second SIGTERM/SIGINT (Ctrl-C twice, systemd's stop and a person's) must not take
      // the default action: that would kill serve mid-stop and orphan the apps. The stop is
      // bounded (drainTimeoutMs + stopTimeoutMs) anyway.
      let stopRequested = false;
      const signalled = new Promise<void>((resolve) => {
        const onSignal = (sig: string): void => {
          if (stopRequested) {
            logger.info({ event: 'signal', signal: sig }, `received ${sig}: already stopping`);
            return;
          }
          stopRequested = true;
          logger.info({ event: 'signal', signal: sig }, `received ${sig}`);
          resolve();
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      });
      running = await startServer({ config, logger, accessLog: f.accessLog, readConfig, ...(listenFd !== null ? { listenFd } : {}), ...(tlsListenFd !== null ? { tlsListenFd } : {}) });
      if (reloadPending) reload();
      await signalled;
      await running.stop();
      logger.flush();
      // Everything serve started is stopped; a handle left open by mistake must not keep a
      // stopped serve alive (under systemd: until TimeoutStopSec).
      setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
    });
}
