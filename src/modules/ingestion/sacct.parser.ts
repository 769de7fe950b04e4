import { CUT_LINE_MARK, MAX_LINE_CHARS } from './line-reader.js';
import {
  foldSteps,
  type MissingBillingColumns,
  type NormalizedJob,
  type NormalizedStep,
  parseJobId,
  type SkippedJob,
  type SourceItem,
} from './slurm-job.model.js';
import {
  createLocalTimeConverter,
  formatTresText,
  isTerminalState,
  MAX_LOGGED_JOB_ID,
  type MemoryAmount,
  normalizeClusterName,
  normalizeState,
  parseCount,
  parseDurationSec,
  parseFiniteDurationSec,
  parseMemory,
  parseMemoryBytes,
  parseTimelimitRawSec,
  parseTres,
  SlurmParseError,
  summarizeTres,
  truncate,
} from './slurm-time.parser.js';

/**
 * The columns the sacct source asks for, in this order. The parser reads columns by
 * header name, so files with other column sets (the demo's, a site's export) work too.
 */
export const SACCT_FORMAT = [
  'JobID',
  'JobIDRaw',
  'Cluster',
  'User',
  'JobName',
  'Account',
  'Partition',
  'QOS',
  'State',
  'ExitCode',
  'Submit',
  'Start',
  'End',
  'Elapsed',
  'ElapsedRaw',
  'TotalCPU',
  'CPUTimeRAW',
  'ReqTRES',
  'AllocTRES',
  'ReqCPUS',
  'AllocCPUS',
  'ReqMem',
  'AveRSS',
  'MaxRSS',
  'ConsumedEnergyRaw',
  'NodeList',
  'AllocNodes',
  'TimelimitRaw',
] as const;

export interface SacctParserOptions {
  /** The zone sacct printed its timestamps in (the cluster's local time, APP_TZ). */
  timeZone: string;
  /** Used when the output has no Cluster column. */
  defaultCluster: string;
  /**
   * Columns a header row after the first must name, beyond JobID, State and User, for the lines under
   * it to be read: a fallback file's key columns (keyColumnsNeeded). The source checks the first.
   */
  requiredColumns?: readonly string[];
}

interface OpenJob {
  job: NormalizedJob;
  steps: NormalizedStep[];
  line: number;
  /** Set when one of the job's step rows was malformed: the whole job is skipped. */
  poison: { line: number; reason: string } | null;
}

/** Thrown by a parser asked to read a file without the columns it cannot do without. */
export class SacctHeaderError extends Error {
  /**
   * @param isHeaderRow the first line is a header row of sacct column names, of a `--format` without a
   *   column a record needs (sacct's default, which has no User column), rather than no header at all
   */
  constructor(
    message: string,
    readonly isHeaderRow = false,
  ) {
    super(message);
    this.name = 'SacctHeaderError';
  }
}

/** The columns the header row must name; a later line that names all three is a header row too. */
const HEADER_COLUMNS = ['JobID', 'State', 'User'];

/** A column name as sacct prints it in a header row: no record's line has only such values (its job id is a number). */
const COLUMN_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

/**
 * The column names of a header row after the first, trimmed, or null for a line that is none: one
 * naming JobID, State and User, or one of column names alone, JobID or JobIDRaw among them (a header
 * of another sacct --format, which may lack a column the parser needs).
 */
function headerNamesIn(text: string): string[] | null {
  // Every line comes here: the substring test first, as splitting a million lines took a third
  // longer over a whole ingest (bench:ingest, 21.7 -> 28.7 s).
  if (!text.includes('JobID')) return null;
  const names = text.split('|').map((name) => name.trim());
  if (HEADER_COLUMNS.every((name) => names.includes(name))) return names;
  const hasJobIdColumn = names.includes('JobID') || names.includes('JobIDRaw');
  return hasJobIdColumn && names.every((name) => COLUMN_NAME.test(name)) ? names : null;
}

/** Whether a header row names a column a job's elapsed time, which every resource-hour is priced on, is read from. */
function hasElapsedColumn(names: readonly string[]): boolean {
  return names.includes('ElapsedRaw') || names.includes('Elapsed');
}

/**
 * The billing figures a header row's columns cannot give, or undefined when they give them all. An older
 * --format is read on purpose (CPUs from AllocCPUS, memory from ReqMem), but without AllocTRES and ReqTRES
 * every job is read with no GPU, and without AllocTRES and AllocCPUS with no allocated CPU: the run's
 * notes say so (ingestion.service.ts, missingColumnsNoteOf), where they were billed as none in silence.
 */
function missingBillingColumnsOf(columns: ReadonlyMap<string, number>): MissingBillingColumns | undefined {
  if (columns.has('AllocTRES')) return undefined;
  const gpus = !columns.has('ReqTRES');
  const allocCpus = !columns.has('AllocCPUS');
  return gpus || allocCpus ? Object.freeze({ gpus, allocCpus }) : undefined;
}

/** The key columns a file read beside slurmrestd and sacct must have (findKeyColumnProblem). */
export function keyColumnsNeeded(options: { isClusterSet: boolean }): string[] {
  return options.isClusterSet ? ['JobIDRaw'] : ['JobIDRaw', 'Cluster'];
}

/**
 * A streaming parser for `sacct --parsable2` output with a header row. Feed it lines in
 * order; it yields a job once the next job starts (sacct prints a job, then its steps),
 * with the steps folded in. Malformed rows become `skip` items and never throw.
 */
export class SacctParser {
  private columns: Map<string, number> | null = null;
  /** What the header row's columns cannot give (missingBillingColumnsOf), given with each job read under it. */
  private missingColumns: MissingBillingColumns | undefined;
  /** The header row's column names, trimmed, joined by `|`: the same row again is not a record. */
  private headerNames = '';
  private columnCount = 0;
  private jobIdIndex = 0;
  /** No column before JobID holds free text, so a stray `|` in a value never moves the JobID. */
  private isJobIdPlaceFixed = true;
  /**
   * The one column that may hold free text (JobName), when every other column is one Slurm
   * formats itself: a line with more fields than the header then has its extra `|`s in that
   * value, and is read with them put back. Null when there is none or more than one.
   */
  private freeTextIndex: number | null = null;
  /** A line that ended inside the free-text value (a name with a newline), waiting for the rest. */
  private held: { text: string; line: number; lines: number } | null = null;
  private open: OpenJob | null = null;
  /**
   * The line of the last header row after the first (0: none yet), where another sacct output joined to
   * the file begins (`cat a.psv b.psv`, an export appended to it): the file source checks each for step rows.
   */
  lastHeaderLine = 0;
  /** The key of a job whose row was skipped: its step rows go with it, uncounted. */
  private skippedKey: string | null = null;
  /**
   * A header row after the first without a column a record needs, and how many lines under it were
   * skipped (without being split) up to now: one skip for them all, given at the next header row
   * with the columns needed, or at the end.
   */
  private skipping: { line: number; missing: string[]; lines: number } | null = null;
  private readonly toUtc: (text: string) => Date | null;

  constructor(private readonly options: SacctParserOptions) {
    this.toUtc = createLocalTimeConverter(options.timeZone);
  }

  /** Parses one line (without its newline); `lineNumber` is 1-based and reported in skips. */
  pushLine(line: string, lineNumber: number): SourceItem[] {
    const text = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (this.columns === null) {
      this.readHeader(text);
      return [];
    }
    const headerNames = headerNamesIn(text);
    if (headerNames !== null) return this.readHeaderAgain(headerNames, lineNumber);
    if (this.skipping !== null) {
      if (text !== '') this.skipping.lines += 1;
      return [];
    }
    const items: SourceItem[] = [];
    const held = this.held;
    if (held) {
      this.held = null;
      // A line that is a record of its own never continues a name.
      const isContinuation =
        held.lines < MAX_NAME_LINES && !text.endsWith(CUT_LINE_MARK) && !this.isRecordOfItsOwn(text);
      if (isContinuation) {
        const merged = `${held.text}\n${text}`;
        const count = merged.split('|').length;
        // More fields than the header: the name holds a `|` as well, put back by readLine.
        if (count >= this.columnCount) return this.readLine(merged, held.line);
        if (count < this.columnCount) {
          this.held = { text: merged, line: held.line, lines: held.lines + 1 };
          return [];
        }
      }
      // Not a name broken across lines after all: the held line is read, and skipped, as it was.
      items.push(...this.readLine(held.text, held.line, false));
    }
    items.push(...this.readLine(text, lineNumber));
    return items;
  }

  /**
   * A header row after the first: `cat a.psv b.psv` of two sacct exports, a natural file to give the
   * file source, has one before each. The same columns again are no record (it made the run partial,
   * "not a Slurm job id: "JobID""). Other columns are read from there on, by their names; they used to
   * be skipped and the lines under them read with the first header's columns, which put values in
   * the wrong fields. A header without a column a record needs has the lines under it skipped, as one
   * skip, up to the next header row that has them. It ends a line held for the rest of a name.
   */
  private readHeaderAgain(names: string[], lineNumber: number): SourceItem[] {
    this.lastHeaderLine = lineNumber;
    const held = this.held;
    this.held = null;
    const items = held ? this.readLine(held.text, held.line, false) : [];
    items.push(...this.endSkipping());
    if (names.join('|') === this.headerNames) return items;
    // The output before it has ended, and its open job with it: read under these columns, the job's
    // last step would have been folded by another header's (AveRSS or not, flush).
    items.push(...this.flush());
    this.skippedKey = null;
    const missing = [...HEADER_COLUMNS, ...(this.options.requiredColumns ?? [])].filter(
      (name) => !names.includes(name),
    );
    // Named only when the rest is there, so that a header of another sort of output is named by its key columns.
    if (missing.length === 0 && !hasElapsedColumn(names)) missing.push('ElapsedRaw or Elapsed');
    if (missing.length > 0) this.skipping = { line: lineNumber, missing, lines: 0 };
    else this.useHeader(names);
    return items;
  }

  /** The one skip of the lines under a header row without a column they need, if any were. */
  private endSkipping(): SourceItem[] {
    const skipping = this.skipping;
    this.skipping = null;
    if (skipping === null || skipping.lines === 0) return [];
    const { line, missing, lines } = skipping;
    return [
      skipItem(
        line,
        null,
        `a header row without the ${missing.join(' and ')} column${missing.length > 1 ? 's' : ''} a record needs ` +
          `(two sacct outputs of different formats joined?): the ${lines} line(s) under it were skipped`,
      ),
    ];
  }

  /** One line (or a record put back together from several), as pushLine reads it. */
  private readLine(text: string, lineNumber: number, mayHold = true): SourceItem[] {
    if (text.trim() === '') return [];
    if (text.endsWith(CUT_LINE_MARK)) {
      // Only its head was kept (line-reader.ts): skipped like a line cut short, with its job.
      const head = text.slice(0, -CUT_LINE_MARK.length).split('|');
      return this.skipMisshapenLine(head, lineNumber, `a line longer than ${MAX_LINE_CHARS} characters`);
    }
    const fields = this.rejoinFreeText(text.split('|'));
    if (mayHold && this.mayBeBrokenName(fields)) {
      this.held = { text, line: lineNumber, lines: 1 };
      return [];
    }
    if (fields.length !== this.columnCount) return this.skipMisshapenLine(fields, lineNumber);
    const idText = this.field(fields, 'JobID');
    const id = parseJobId(idText);
    if (!id) return this.skipLine(lineNumber, idText, `not a Slurm job id: "${truncate(idText)}"`);

    if (id.stepId !== null) {
      const open = this.open;
      // The steps of a job whose row was skipped go with it, also when an open job stays open around it.
      if (this.skippedKey === id.jobKey && open?.job.jobKey !== id.jobKey) return [];
      if (!open || open.job.jobKey !== id.jobKey) {
        return [
          skipItem(lineNumber, idText, `step ${shortId(idText)} without its job row before it`, this.jobOf(fields, id)),
        ];
      }
      if (open.poison) return [];
      try {
        open.steps.push(this.readStep(fields, id.stepId));
      } catch (error) {
        open.poison = { line: lineNumber, reason: `step ${shortId(idText)}: ${describe(error)}` };
      }
      return [];
    }

    let job: NormalizedJob;
    try {
      job = this.readJob(fields, id);
    } catch (error) {
      // Another job's row that cannot be read leaves the open job open for its steps, as a misshapen one does.
      const items = this.open && this.open.job.jobKey !== id.jobKey ? [] : this.flush();
      items.push(skipItem(lineNumber, idText, describe(error), this.jobOf(fields, id)));
      this.skippedKey = id.jobKey;
      return items;
    }
    const items = this.flush();
    this.skippedKey = null;
    this.open = { job, steps: [], line: lineNumber, poison: null };
    return items;
  }

  /** Call at the end of input: yields the last open job. */
  end(): SourceItem[] {
    if (this.columns === null) throw new SacctHeaderError('the sacct output is empty (no header row)');
    const held = this.held;
    this.held = null;
    const items = held ? this.readLine(held.text, held.line, false) : [];
    items.push(...this.endSkipping());
    items.push(...this.flush());
    return items;
  }

  /**
   * sacct prints a newline in a job or step name as it is (`sbatch -J $'a\nb'`, seen on the lab),
   * so the record goes on on the next line. A line with too few fields that reaches the free-text
   * column is held until the lines after it make up one record (more fields when the name holds a
   * `|` too, `sbatch -J $'a|b\nc|d'`); skipped instead, such a job was never billed through sacct or
   * a file. A line that does not complete it is read, and skipped, on its own, as a line cut short
   * always was.
   */
  private mayBeBrokenName(fields: string[]): boolean {
    const index = this.freeTextIndex;
    // Past the name's column too: the part of the name before its newline may hold a `|`.
    return index !== null && fields.length < this.columnCount && fields.length - 1 >= index;
  }

  /**
   * Whether a line is a record of its own rather than the rest of a name broken by a newline: as
   * many fields as the header or more, and, where the JobID column comes before the name and so
   * keeps its place, a job id there. The rest of a name may hold `|`s (`sbatch -J $'a\nb|c'`), which
   * give it as many fields as a record but never a job id where the JobID column is.
   */
  private isRecordOfItsOwn(text: string): boolean {
    const fields = text.split('|');
    if (fields.length < this.columnCount) return false;
    const index = this.freeTextIndex;
    const isIdPlaceKnown = this.isJobIdPlaceFixed && index !== null && this.jobIdIndex < index;
    return !isIdPlaceKnown || parseJobId(fields[this.jobIdIndex] ?? '') !== null;
  }

  private readHeader(text: string) {
    const names = text.split('|').map((name) => name.trim());
    const missing = HEADER_COLUMNS.filter((required) => !names.includes(required));
    if (missing.length > 0 && headerNamesIn(text) !== null) {
      // sacct's default --format (JobID|JobName|Partition|Account|AllocCPUS|State|ExitCode) has no User
      // column: an export made as the docs' sacct command reads, without --format, is such a file, and
      // "the first line must be the header" sent the admin looking for a header that is there.
      throw new SacctHeaderError(
        `its header row has no ${missing.join(' or ')} column, which a record needs (sacct's default --format ` +
          `leaves User out): export it with --format=${SACCT_FORMAT.join(',')} (the columns the sacct source reads)`,
        true,
      );
    }
    if (missing.length > 0) {
      throw new SacctHeaderError(
        `the sacct output has no ${missing[0]} column; the first line must be the header (sacct --parsable2 without --noheader)`,
      );
    }
    if (!hasElapsedColumn(names)) {
      // Read as 0, every job's elapsed time priced no GPU-hours, no memory from its allocation and no
      // allocated CPU: the file was billed next to nothing, and its window passed.
      throw new SacctHeaderError(
        `its header row has no ElapsedRaw or Elapsed column, without which every job would be billed for no time: ` +
          `export it with --format=${SACCT_FORMAT.join(',')} (the columns the sacct source reads)`,
        true,
      );
    }
    this.useHeader(names);
  }

  /** Reads the lines from here on by this header row's column names. */
  private useHeader(names: string[]) {
    this.headerNames = names.join('|');
    const columns = new Map<string, number>();
    names.forEach((name, index) => {
      columns.set(name, index);
    });
    this.columns = columns;
    this.missingColumns = missingBillingColumnsOf(columns);
    this.columnCount = names.length;
    this.jobIdIndex = columns.get('JobID') as number;
    this.isJobIdPlaceFixed = names.slice(0, this.jobIdIndex).every((name) => PIPE_FREE_COLUMNS.has(name));
    const freeText = names.flatMap((name, index) => (PIPE_FREE_COLUMNS.has(name) ? [] : [index]));
    this.freeTextIndex = freeText.length === 1 ? (freeText[0] as number) : null;
  }

  /**
   * sacct --parsable2 does not escape a `|` in a job or step name (`sbatch -J 'a|b'`): the line
   * has more fields than the header. With a single free-text column, the extra `|`s can only be
   * in it, so the value is put back together; skipped instead, such a job was never billed
   * through sacct or a file, while slurmrestd read it whole.
   */
  private rejoinFreeText(fields: string[]): string[] {
    const extra = fields.length - this.columnCount;
    const index = this.freeTextIndex;
    if (extra <= 0 || index === null) return fields;
    return [
      ...fields.slice(0, index),
      fields.slice(index, index + extra + 1).join('|'),
      ...fields.slice(index + extra + 1),
    ];
  }

  /**
   * A line with the wrong number of fields: cut short, or with a `|` inside a value. Its own
   * record is lost, and with it the sums of its job: a step of the open job skips that job
   * whole (as a bad step value does); a job row closes the open job, as any job row does, and
   * its steps go with it. A line whose JobID cannot be read may have been one of the open
   * job's steps, so the open job is skipped too, unless what is left of the JobID says it is not.
   */
  private skipMisshapenLine(fields: string[], lineNumber: number, cutReason?: string): SourceItem[] {
    const reason = cutReason ?? `expected ${this.columnCount} fields, found ${fields.length}`;
    // With extra fields, a `|` inside a value before the JobID column would move the JobID.
    // (A cut line's head has extra fields only if a value before the cut held a stray `|`.)
    const hasExtraFields = fields.length > this.columnCount;
    const idField = !hasExtraFields || this.isJobIdPlaceFixed ? fields[this.jobIdIndex] : undefined;
    // The last field of a cut line may be cut itself (`2.1` -> `2.`): the JobID is whole only if a field follows.
    const isWhole = idField !== undefined && fields.length > this.jobIdIndex + 1;
    const id = isWhole ? parseJobId(idField) : null;
    const jobId = idField || null;
    const open = this.open;
    if (id && id.stepId !== null) {
      if (open && open.job.jobKey === id.jobKey) {
        open.poison ??= { line: lineNumber, reason: `step ${shortId(idField)}: ${reason}` };
        return [];
      }
      if (this.skippedKey === id.jobKey) return [];
      return this.skipLine(lineNumber, jobId, `step ${shortId(idField)}: ${reason}`);
    }
    if (id) {
      // A job row of another job than the open one, among the open job's steps (a line damaged or put
      // there in a file): the open job stays open for the steps after it. Closed here, it was stored
      // with the steps before the line alone, its CPU time and memory GB-hours short, and billed so.
      const items = open && open.job.jobKey !== id.jobKey ? [] : this.flush();
      items.push(skipItem(lineNumber, jobId, reason));
      this.skippedKey = id.jobKey;
      return items;
    }
    if (open && !open.poison && !isWhole && mayBeStepOf(idField, open.job.jobKey)) {
      open.poison = {
        line: open.line,
        reason: `line ${lineNumber} after it cannot be read (${reason}) and may be one of its steps`,
      };
    }
    return this.skipLine(lineNumber, jobId, reason);
  }

  private flush(): SourceItem[] {
    const open = this.open;
    this.open = null;
    if (!open) return [];
    if (open.poison) {
      return [skipItem(open.poison.line, open.job.jobId, open.poison.reason, open.job)];
    }
    try {
      const job = foldSteps(open.job, open.steps);
      // Without an AveRSS column the steps say nothing of memory: none (null) is priced from the
      // allocation (docs/pricing.md), where a sum of nothing, 0, billed no memory at all.
      if (!this.has('AveRSS')) job.stepMemGbHours = null;
      // Likewise without a TotalCPU column the steps say nothing of CPU time: each step's missing figure
      // summed as 0 billed such a job no CPU under the used basis, where pricing falls back to CPUTimeRAW.
      if (!this.has('TotalCPU')) job.totalCpuSec = null;
      return [{ kind: 'job', job, line: open.line }];
    } catch (error) {
      // A step figure that cannot be summed exactly (an AveRSS of petabytes): skipped, never billed short.
      return [skipItem(open.line, open.job.jobId, describe(error), open.job)];
    }
  }

  private skipLine(line: number, jobId: string | null, reason: string): SourceItem[] {
    return [skipItem(line, jobId, reason)];
  }

  private field(fields: string[], name: string): string {
    const index = this.columns?.get(name);
    return index === undefined ? '' : (fields[index] ?? '');
  }

  /**
   * The cluster and JobIDRaw a record's job would be stored under (as readJob reads them; a step's
   * JobIDRaw without its `.step`), or undefined when they cannot be read: the run counts a skipped job
   * by them, as it counts the jobs it stores.
   */
  private jobOf(fields: string[], id: NonNullable<ReturnType<typeof parseJobId>>): SkippedJob | undefined {
    const raw = this.field(fields, 'JobIDRaw').trim();
    const rawJob = id.stepId === null || raw.indexOf('.') === -1 ? raw : raw.slice(0, raw.indexOf('.'));
    const jobId = rawJob || (raw === '' ? id.jobKey : '');
    const cluster = this.field(fields, 'Cluster').trim() || this.options.defaultCluster;
    const isReadable = (raw === '' || /^\d+$/.test(rawJob)) && jobId.length <= MAX_LOGGED_JOB_ID;
    return isReadable && cluster.length <= MAX_LOGGED_JOB_ID
      ? { cluster: normalizeClusterName(cluster), jobId }
      : undefined;
  }

  private has(name: string): boolean {
    return this.columns?.has(name) ?? false;
  }

  private readJob(fields: string[], id: NonNullable<ReturnType<typeof parseJobId>>): NormalizedJob {
    const user = this.field(fields, 'User').trim();
    if (user === '') throw new SlurmParseError('job row without a user');
    const state = normalizeState(this.field(fields, 'State'));
    if (state === '') throw new SlurmParseError('job row without a state');
    const rawId = this.field(fields, 'JobIDRaw').trim();
    if (rawId !== '' && !/^\d+$/.test(rawId)) {
      throw new SlurmParseError(`JobIDRaw is not a number: "${truncate(rawId)}"`);
    }
    const allocTres = parseTres(this.field(fields, 'AllocTRES'));
    const reqTres = parseTres(this.field(fields, 'ReqTRES'));
    const alloc = summarizeTres(allocTres);
    const req = summarizeTres(reqTres);
    const elapsed = this.has('ElapsedRaw')
      ? parseCount(this.field(fields, 'ElapsedRaw'))
      : parseFiniteDurationSec(this.field(fields, 'Elapsed'));
    const endAt = this.toUtc(this.field(fields, 'End'));
    const reqMem = this.has('ReqMem') ? parseMemory(this.field(fields, 'ReqMem'), 'M') : null;
    // AllocCPUS is only a fallback: sacct prints the requested count there for pending jobs.
    const hasAllocTres = this.has('AllocTRES');
    const allocCpus = hasAllocTres ? alloc.cpus : (parseCount(this.field(fields, 'AllocCPUS')) ?? 0);
    const allocNodes =
      hasAllocTres && alloc.nodes > 0 ? alloc.nodes : (parseCount(this.field(fields, 'AllocNodes')) ?? 0);
    const reqCpus = this.has('ReqTRES') ? req.cpus : (parseCount(this.field(fields, 'ReqCPUS')) ?? 0);
    let reqMemMb = req.memMb;
    if (reqMemMb === 0 && reqMem) {
      // Old per-CPU/per-node ReqMem (`4000Mc`) is scaled to the whole job.
      const factor = reqMem.per === 'cpu' ? Math.max(reqCpus, 1) : reqMem.per === 'node' ? Math.max(allocNodes, 1) : 1;
      reqMemMb = (reqMem.bytes * factor) / 1024 ** 2;
    }
    // Without AllocTRES (a file of AllocCPUS and ReqMem, as sacct before TRES printed them) the job
    // holds what it asked for, on every CPU or node it holds: Slurm allocates ReqMem so. Read as 0,
    // the memory of a job without AveRSS steps was billed as none.
    const allocMemMb = hasAllocTres || !reqMem ? alloc.memMb : allocatedMemMb(reqMem, allocCpus, allocNodes);
    const timelimit = this.has('TimelimitRaw')
      ? parseTimelimitRawSec(this.field(fields, 'TimelimitRaw'))
      : parseDurationSec(this.field(fields, 'Timelimit'));
    const totalCpu = parseFiniteDurationSec(this.field(fields, 'TotalCPU'));
    const nodeList = this.field(fields, 'NodeList').trim();
    const cluster = normalizeClusterName(this.field(fields, 'Cluster').trim() || this.options.defaultCluster);
    return {
      cluster,
      jobId: rawId || id.jobKey,
      jobKey: id.jobKey,
      arrayJobId: id.arrayJobId,
      arrayTaskId: id.arrayTaskId,
      name: this.field(fields, 'JobName'),
      user,
      account: this.field(fields, 'Account').trim(),
      partition: this.field(fields, 'Partition').trim(),
      qos: this.field(fields, 'QOS').trim(),
      state,
      isTerminal: isTerminalState(state) && endAt !== null,
      exitCode: this.field(fields, 'ExitCode').trim() || null,
      submitAt: this.toUtc(this.field(fields, 'Submit')),
      startAt: this.toUtc(this.field(fields, 'Start')),
      endAt,
      elapsedSec: elapsed ?? 0,
      timelimitSec: timelimit === Number.POSITIVE_INFINITY ? null : timelimit,
      allocCpus,
      allocMemMb,
      allocGpus: alloc.gpus,
      allocNodes,
      allocBilling: alloc.billing,
      reqCpus,
      reqMemMb,
      reqGpus: req.gpus,
      allocTres: formatTresText(allocTres),
      reqTres: formatTresText(reqTres),
      cpuTimeSec: this.has('CPUTimeRAW') ? parseCount(this.field(fields, 'CPUTimeRAW')) : null,
      totalCpuSec: totalCpu,
      stepMemGbHours: null,
      maxRssBytes: null,
      energyJoules: this.has('ConsumedEnergyRaw') ? parseCount(this.field(fields, 'ConsumedEnergyRaw')) : null,
      stepCount: 0,
      steps: [],
      nodeList: nodeList === 'None assigned' ? '' : nodeList,
      missingColumns: this.missingColumns,
    };
  }

  private readStep(fields: string[], stepId: string): NormalizedStep {
    const elapsed = this.has('ElapsedRaw')
      ? parseCount(this.field(fields, 'ElapsedRaw'))
      : parseFiniteDurationSec(this.field(fields, 'Elapsed'));
    return {
      id: stepId,
      name: this.field(fields, 'JobName'),
      state: normalizeState(this.field(fields, 'State')),
      elapsedSec: elapsed ?? 0,
      totalCpuSec: parseFiniteDurationSec(this.field(fields, 'TotalCPU')) ?? 0,
      aveRssBytes: parseMemoryBytes(this.field(fields, 'AveRSS')),
      maxRssBytes: parseMemoryBytes(this.field(fields, 'MaxRSS')),
      energyJoules: this.has('ConsumedEnergyRaw') ? parseCount(this.field(fields, 'ConsumedEnergyRaw')) : null,
    };
  }
}

/** Memory a job was given for its ReqMem: per CPU (`c`) times its CPUs, per node (`n`) times its nodes, else as is. */
function allocatedMemMb(reqMem: MemoryAmount, cpus: number, nodes: number): number {
  const factor = reqMem.per === 'cpu' ? cpus : reqMem.per === 'node' ? nodes : 1;
  return (reqMem.bytes * factor) / 1024 ** 2;
}

/** The most lines one record is put back together from (a name with that many newlines less one). */
const MAX_NAME_LINES = 16;

// Columns whose values Slurm formats itself (ids, names, states, times, numbers, TRES lists): never a `|`.
const PIPE_FREE_COLUMNS = new Set([
  'JobID',
  'JobIDRaw',
  'Cluster',
  'User',
  'UID',
  'Group',
  'GID',
  'Account',
  'Partition',
  'QOS',
  'State',
  'ExitCode',
  'DerivedExitCode',
  'Submit',
  'Eligible',
  'Start',
  'End',
  'Elapsed',
  'ElapsedRaw',
  'TotalCPU',
  'CPUTime',
  'CPUTimeRAW',
  'ReqCPUS',
  'AllocCPUS',
  'ReqMem',
  'AllocNodes',
  'NodeList',
  'TimelimitRaw',
  'Timelimit',
  'ReqTRES',
  'AllocTRES',
  'AveRSS',
  'MaxRSS',
  'ConsumedEnergyRaw',
  'TRESUsageInTot',
  'TRESUsageOutTot',
  'Reason',
]);

/**
 * A skip as the run logs it: the JobID column's value and the reason, both cut short. A JobID that is
 * empty or blank (the damaged field itself) names no job: the run then names the record by its line
 * ("a record (line 4)") and counts each such line. Passed on as `''`, it was named "job  (line 4)", and
 * every record without a JobID counted as one skip under that one empty name.
 */
function skipItem(line: number, jobId: string | null, reason: string, job?: SkippedJob): SourceItem {
  return {
    kind: 'skip',
    line,
    jobId: jobId === null || jobId.trim() === '' ? null : shortId(jobId),
    reason: truncate(reason, 300),
    ...(job ? { job: { cluster: job.cluster, jobId: job.jobId } } : {}),
  };
}

function shortId(jobId: string | undefined): string {
  return truncate(jobId ?? '', MAX_LOGGED_JOB_ID);
}

/** Whether a JobID cut short (or not there at all) could have been a step of job `jobKey`. */
function mayBeStepOf(idField: string | undefined, jobKey: string): boolean {
  if (idField === undefined) return true;
  const stepPrefix = `${jobKey}.`;
  return stepPrefix.startsWith(idField) || idField.startsWith(stepPrefix);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Why the records of sacct output with this header row would not be the rows slurmrestd and sacct (the
 * source's own `--format`, SACCT_FORMAT) store for the same jobs, or null. Without JobIDRaw an array task
 * or heterogeneous component is keyed by its display id (`123_4`), not by its own job id; without Cluster,
 * and SLURM_CLUSTER unset, every job gets the cluster "default". A file read beside those sources (a
 * FALLBACK_CSV) stored such jobs again, beside their rows, and they were billed twice.
 */
export function findKeyColumnProblem(header: string, options: { isClusterSet: boolean }): string | null {
  const names = new Set(header.split('|').map((name) => name.trim()));
  const needed = keyColumnsNeeded(options);
  const noJobIdRaw = !names.has('JobIDRaw');
  const noCluster = needed.includes('Cluster') && !names.has('Cluster');
  if (!noJobIdRaw && !noCluster) return null;
  const missing = [...(noJobIdRaw ? ['JobIDRaw'] : []), ...(noCluster ? ['Cluster'] : [])];
  const why = [
    ...(noJobIdRaw ? ['an array task under its display id, 123_4, not its own job id'] : []),
    ...(noCluster ? ['the cluster named "default"'] : []),
  ];
  return (
    `it has no ${missing.join(' or ')} column${noCluster ? ' and SLURM_CLUSTER is unset' : ''}: ` +
    `its jobs would not be the rows slurmrestd and sacct store for them (${why.join('; ')}), so each job read ` +
    `both ways would be stored, and billed, twice. Add ${missing.join(' and ')} to the sacct --format that ` +
    `writes it${noCluster ? ', or set SLURM_CLUSTER' : ''}`
  );
}

/** Parses a whole sacct text at once (tests, small files). */
export function parseSacctText(text: string, options: SacctParserOptions): SourceItem[] {
  const parser = new SacctParser(options);
  const items: SourceItem[] = [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((line, index) => {
    items.push(...parser.pushLine(line, index + 1));
  });
  items.push(...parser.end());
  return items;
}
