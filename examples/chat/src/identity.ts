// Who this tab is: the display name the user picked (kept in localStorage,
// so it survives reloads and is shared by the tabs of one browser) and a
// random id per tab, sent with every message and typing event so that a
// tab recognises its own events even when two users pick the same name.
import { useCallback, useState } from 'react';

const NAME_KEY = 'herald-chat:name';
export const MAX_NAME_LENGTH = 32;

/** Per page load; Math.random because crypto.randomUUID needs a secure context (plain http on a LAN is not). */
export const TAB_ID = Math.random().toString(36).slice(2, 12);

function storedName(): string {
  try {
    return localStorage.getItem(NAME_KEY) ?? '';
  } catch {
    return ''; // storage disabled: ask again on every load
  }
}

export function useName(): [string, (name: string) => void] {
  const [name, setName] = useState(storedName);
  const save = useCallback((next: string) => {
    try {
      if (next) localStorage.setItem(NAME_KEY, next);
      else localStorage.removeItem(NAME_KEY);
    } catch {
      // storage disabled: the name lasts until the page is closed
    }
    setName(next);
  }, []);
  return [name, save];
}
