// Random friendly names for visitors who did not type one, and the check of
// a typed one (what the schema and the token's info allow: 1 to 32
// characters once trimmed).

const ADJECTIVES = ['Brave', 'Calm', 'Clever', 'Eager', 'Gentle', 'Happy', 'Jolly', 'Kind', 'Lively', 'Lucky', 'Merry', 'Quiet', 'Swift', 'Witty', 'Zesty', 'Bold'];
const ANIMALS = ['Otter', 'Falcon', 'Panda', 'Fox', 'Heron', 'Koala', 'Lynx', 'Marmot', 'Owl', 'Puffin', 'Quokka', 'Raven', 'Seal', 'Tiger', 'Walrus', 'Yak'];

export const MAX_NAME_LENGTH = 32;

export function friendlyName(random: () => number = Math.random): string {
  const pick = (list: string[]) => list[Math.floor(random() * list.length)]!;
  return `${pick(ADJECTIVES)} ${pick(ANIMALS)}`;
}

/** The trimmed name, or null when it is empty or too long. */
export function cleanName(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const name = value.trim().replace(/\s+/g, ' ');
  if (name.length === 0 || [...name].length > MAX_NAME_LENGTH) return null;
  return name;
}
