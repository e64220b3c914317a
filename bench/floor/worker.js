// The floor for the attachment rows (bench/scenarios/files.ts): a bare Worker that streams a request
// body into the same R2 bucket binding Parley uses and streams it back, with no auth, no D1, no
// checks. Served by `wrangler dev` like Parley in the same run, on the same persisted state.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/health") return new Response("ok");
    const key = `floor/${url.pathname.split("/").pop()}`;
    if (request.method === "PUT") {
      const object = await env.ATTACHMENTS.put(key, request.body);
      return Response.json({ size: object.size }, { status: 201 });
    }
    if (request.method === "GET") {
      const object = await env.ATTACHMENTS.get(key);
      if (!object) return new Response("not found", { status: 404 });
      return new Response(object.body, { headers: { "Content-Length": String(object.size) } });
    }
    return new Response("method not allowed", { status: 405 });
  },
};
