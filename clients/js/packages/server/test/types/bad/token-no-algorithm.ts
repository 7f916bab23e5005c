// expect-error: TS2345 Argument of type '{ privateKey: string; }' is not assignable to parameter of type 'SigningOptions'
import { createConnectionToken } from '@herald/server';

// A private key needs its algorithm.
createConnectionToken({ sub: 'u' }, { privateKey: 'pem' });
