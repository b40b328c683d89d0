/**
 * Rows as columns padded like Go's `text/tabwriter` with istioctl's settings (`Init(w, 0, 8, 5,
 * ' ', 0)`): each column as wide as its widest cell plus 5 spaces, the last column unpadded.
 */
export function formatTable(rows: ReadonlyArray<readonly string[]>): string[] {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 5)))
      .join("")
      .trimEnd(),
  );
}
