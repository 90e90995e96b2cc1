// Counts in messages read as English: "1 request", "2 requests" (status printed "1 requests waiting").

/** `n` and the word, in the plural unless n is 1 ("1 request", "0 requests", "2 entries" with `many`). */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
