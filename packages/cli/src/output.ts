export interface Column<Row> {
  header: string;
  value: (row: Row) => string;
}

/** Machine-readable output: one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Plain text for a terminal: one line. */
export function printLine(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Advice and warnings for the person at the terminal: stderr, so stdout stays the command's output. */
export function printNote(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** A table with left-aligned columns padded to their widest cell; the last column is not padded. */
export function printTable<Row>(rows: readonly Row[], columns: readonly Column<Row>[]): void {
  const cells = [columns.map((c) => c.header), ...rows.map((row) => columns.map((c) => oneLine(c.value(row))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  for (const line of cells) {
    const padded = line.map((cell, i) => (i === line.length - 1 ? cell : cell.padEnd(widths[i]!)));
    printLine(padded.join('  ').trimEnd());
  }
}

/** Error messages can span lines (stack-like bodies); a table row must not. */
function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
