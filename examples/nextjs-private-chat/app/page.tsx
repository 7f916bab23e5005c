// The home page: pick a name and create a private room (an HTML form posted
// to the route handler app/api/rooms/route.ts, which answers with a redirect
// to the new room, so it works without JavaScript too). Says why the
// visitor was sent back here (`?ended=destroyed|expired|missing`).
import { currentVisitor } from '@/lib/identity';
import { friendlyName, MAX_NAME_LENGTH } from '@/lib/names';
import { END_MESSAGES, type EndReason } from '@/lib/rooms';

const ERRORS: Record<string, string> = {
  name: `Names have 1 to ${MAX_NAME_LENGTH} characters.`,
  herald: 'The realtime server could not be reached; try again in a moment.',
};

export default async function Home({ searchParams }: { searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  const { ended, error } = await searchParams;
  const visitor = await currentVisitor();
  const endMessage = typeof ended === 'string' && ended in END_MESSAGES ? END_MESSAGES[ended as EndReason] : null;
  const errorMessage = typeof error === 'string' ? ERRORS[error] : undefined;
  return (
    <>
      <h1>Private chat</h1>
      {endMessage && (
        <p className="panel notice" role="status" data-testid="ended">
          {endMessage}
        </p>
      )}
      {errorMessage && (
        <p className="panel alert" role="alert">
          {errorMessage}
        </p>
      )}
      <form className="panel" method="post" action="/api/rooms">
        <p>
          A room for two, gone after ten minutes or when either of you destroys it. Share its link with the one person
          you want to talk to.
        </p>
        <label htmlFor="name">Your name</label>
        <div className="row">
          <input
            id="name"
            name="name"
            type="text"
            className="grow"
            maxLength={MAX_NAME_LENGTH}
            required
            defaultValue={visitor?.name ?? friendlyName()}
            autoComplete="nickname"
          />
          <button type="submit">Create a private room</button>
        </div>
      </form>
    </>
  );
}
