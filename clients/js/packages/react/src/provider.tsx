// <HeraldProvider> puts one Herald client in React context (the app's own,
// or one it creates from `url`/`getToken` and closes on unmount), and
// useHerald() reads it. The only place that connects or closes a client.

import { Herald, type HeraldOptions } from '@herald/client';
import { createContext, useContext, useEffect, useMemo, useRef, type ReactNode } from 'react';
import type { RegisteredSchema } from './register.js';

const HeraldContext = createContext<Herald<any> | null>(null);

export type HeraldProviderProps =
  | {
      /** a client the app owns: connected on mount, not closed on unmount */
      client: Herald<any>;
      children?: ReactNode;
    }
  | ({
      client?: undefined;
      /** WebSocket URL: the provider creates the client, connects it, and closes it on unmount or URL change */
      url: string;
      /**
       * returns a connection token from the app's backend (e.g. `() => fetch('/api/herald-token').then((r) => r.text())`):
       * the client's `token` option, called before every (re)connect and before the token expires; may be a new
       * function on every render (the latest is called)
       */
      getToken?: () => string | Promise<string>;
      children?: ReactNode;
    } & Omit<HeraldOptions, 'url'>);

export function HeraldProvider(props: HeraldProviderProps) {
  // The token may be a new function on every render: the client always calls the latest.
  const tokenRef = useRef<HeraldOptions['token']>(undefined);
  tokenRef.current = props.client ? undefined : (props.getToken ?? props.token);
  const ownUrl = props.client ? null : props.url;
  const own = useMemo(() => {
    if (ownUrl === null || props.client) return null;
    const { children: _children, client: _client, token, getToken, ...options } = props;
    return new Herald({
      ...options,
      url: ownUrl,
      token:
        (getToken ?? token) === undefined
          ? undefined
          : async () => {
              const t = tokenRef.current;
              return typeof t === 'function' ? t() : (t ?? '');
            },
    });
    // Only a new URL makes a new client; other options are read once.
  }, [ownUrl]);
  const client = props.client ?? own!;
  useEffect(() => {
    client.connect();
    if (client !== own) return undefined;
    return () => client.close();
  }, [client, own]);
  return <HeraldContext.Provider value={client}>{props.children}</HeraldContext.Provider>;
}

/** The client of the nearest <HeraldProvider>, typed with the registered schema. */
export function useHerald(): Herald<RegisteredSchema> {
  const client = useContext(HeraldContext);
  if (!client) throw new Error('useHerald: no <HeraldProvider> above this component');
  return client;
}
