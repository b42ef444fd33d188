# syntax=docker/dockerfile:1

FROM node:20-bookworm-slim AS build
WORKDIR /app
# Manifests first, so the dependency layer is reused when only sources change.
COPY package.json package-lock.json ./
COPY packages/shared/package.json packages/shared/
COPY packages/workflow/package.json packages/workflow/
COPY packages/cli/package.json packages/cli/
COPY apps/ingest/package.json apps/ingest/
COPY apps/worker/package.json apps/worker/
RUN npm ci
COPY tsconfig.json tsconfig.base.json ./
COPY packages/ packages/
COPY apps/ingest/ apps/ingest/
COPY apps/worker/ apps/worker/
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
# scripts/node-options.mjs says why; a test keeps the two equal.
ENV NODE_OPTIONS="--max-semi-space-size=32"
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
# node_modules/@replyflow/* are symlinks into the workspaces copied below.
COPY --from=build /app/node_modules/ node_modules/
COPY --from=build /app/packages/shared/package.json packages/shared/
COPY --from=build /app/packages/shared/dist/ packages/shared/dist/
COPY --from=build /app/packages/workflow/package.json packages/workflow/
COPY --from=build /app/packages/workflow/dist/ packages/workflow/dist/
COPY --from=build /app/packages/cli/package.json packages/cli/
COPY --from=build /app/packages/cli/bin/ packages/cli/bin/
COPY --from=build /app/packages/cli/dist/ packages/cli/dist/
COPY --from=build /app/apps/ingest/package.json apps/ingest/
COPY --from=build /app/apps/ingest/dist/ apps/ingest/dist/
COPY --from=build /app/apps/worker/package.json apps/worker/
COPY --from=build /app/apps/worker/dist/ apps/worker/dist/
USER node
EXPOSE 3000 9464 9465
CMD ["node", "apps/ingest/dist/main.js"]
