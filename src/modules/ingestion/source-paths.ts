import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import type { AppConfig } from '../../config/config.js';
import type { Logger } from '../../shared/logger.js';
import { findSacctPathProblem } from './sacct.source.js';

/** A source's file that cannot be used as set: its setting, its path, and why (a code and a sentence). */
interface PathProblem {
  setting: 'SACCT_PATH' | 'FALLBACK_CSV' | 'SLURMRESTD_TOKEN_FILE' | 'SLURMRESTD_CA_FILE';
  path: string;
  code: string;
  message: string;
}

/**
 * Says at start-up, one warning line each, that SACCT_PATH cannot be run or FALLBACK_CSV,
 * SLURMRESTD_TOKEN_FILE or SLURMRESTD_CA_FILE cannot be read: a typo, or a mount not up, showed only
 * later as ingestion runs failing with a configuration error, read by whoever opened the ingestion
 * page (the two slurmrestd files were not checked at start at all, though a compose mount of root's
 * chmod 600 token file is the likeliest of these). The start goes on (the mount may come later, and
 * every run checks again). Also that SLURMRESTD_TOKEN_FILE goes unread beside SLURMRESTD_TOKEN. Returns
 * how many it warned of.
 */
export async function warnAboutUnusableSourcePaths(
  logger: Pick<Logger, 'warn'>,
  config: Pick<AppConfig, 'ingestion' | 'timeZone'>,
): Promise<number> {
  const slurmrestd = config.ingestion.slurmrestd;
  const unreadTokenFile = slurmrestd?.token ? slurmrestd.tokenFile : undefined;
  if (unreadTokenFile) {
    // The runs send SLURMRESTD_TOKEN (readSlurmrestdToken): a file set beside it, as the docs advise for
    // renewals, was never read, and an old SLURMRESTD_TOKEN left in the environment kept being sent.
    logger.warn(
      { setting: 'SLURMRESTD_TOKEN_FILE', path: unreadTokenFile },
      `SLURMRESTD_TOKEN and SLURMRESTD_TOKEN_FILE are both set: every run sends SLURMRESTD_TOKEN and never reads ${unreadTokenFile}, ` +
        'so renewing the file changes nothing. Unset SLURMRESTD_TOKEN to use the file (re-read on every request), or unset SLURMRESTD_TOKEN_FILE',
    );
  }
  const problems = await findUnusableSourcePaths(config);
  for (const { setting, path, code, message } of problems) {
    const source = setting === 'SACCT_PATH' ? 'sacct' : setting === 'FALLBACK_CSV' ? 'the file' : 'slurmrestd';
    logger.warn(
      { setting, path, code },
      `${message}: every ingestion run that reaches ${source} will fail there with a configuration error ` +
        `(the run tries the next source, if there is one) until ${setting === 'SACCT_PATH' ? 'it can be run' : setting === 'FALLBACK_CSV' ? 'it can be read' : 'the file can be read'}; ` +
        'the app starts all the same, as it may be on a mount not there yet (each run checks again)',
    );
  }
  return problems.length + (unreadTokenFile ? 1 : 0);
}

async function findUnusableSourcePaths(config: Pick<AppConfig, 'ingestion' | 'timeZone'>): Promise<PathProblem[]> {
  const problems: PathProblem[] = [];
  const { sacct, fallbackCsv, slurmrestd } = config.ingestion;
  // As the runs read them (slurm-rest.source.ts): the token file only when SLURMRESTD_TOKEN is unset.
  const restFiles = [
    ['SLURMRESTD_TOKEN_FILE', slurmrestd?.token ? undefined : slurmrestd?.tokenFile],
    ['SLURMRESTD_CA_FILE', slurmrestd?.caFile],
  ] as const;
  for (const [setting, file] of restFiles) {
    const code = file ? await findUnreadableFileCode(file) : null;
    // As a run says it (slurm-rest.source.ts).
    if (file && code)
      problems.push({ setting, path: file, code, message: `${setting} ${file} cannot be read (${code})` });
  }
  if (sacct) {
    const problem = await findSacctPathProblem({
      sacctPath: sacct.path,
      inheritedEnvironment: sacct.inheritedEnvironment,
      timeZone: config.timeZone,
    });
    if (problem) problems.push({ setting: 'SACCT_PATH', path: sacct.path, ...problem });
  }
  if (fallbackCsv) {
    const code = await findUnreadableFileCode(fallbackCsv);
    if (code) {
      problems.push({
        setting: 'FALLBACK_CSV',
        path: fallbackCsv,
        code,
        // As a run says it (sacct-file.source.ts).
        message: `FALLBACK_CSV ${fallbackCsv} cannot be read (${code})`,
      });
    }
  }
  return problems;
}

/** The error code that reading `path` as a file fails with (EISDIR for a directory); null when it can be read. */
async function findUnreadableFileCode(path: string): Promise<string | null> {
  try {
    if ((await stat(path)).isDirectory()) return 'EISDIR';
    await access(path, constants.R_OK);
    return null;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? 'error';
  }
}
