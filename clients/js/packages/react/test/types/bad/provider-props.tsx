// expect-error: TS2322 Property 'url' is missing
import { HeraldProvider } from '@herald/react';

export const App = () => <HeraldProvider token="t">x</HeraldProvider>;
