# plangate server/worker image. docker-compose.yml builds it.
FROM node:20-bookworm-slim

ARG TERRAFORM_VERSION=1.11.4
# git: repository mirrors; bubblewrap + util-linux (prlimit, setpriv): the plan sandbox.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git bubblewrap util-linux ca-certificates curl unzip \
 && curl -fsSLo /tmp/terraform.zip "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_linux_amd64.zip" \
 && unzip -q /tmp/terraform.zip -d /usr/local/bin terraform \
 && rm /tmp/terraform.zip \
 && apt-get purge -y curl unzip && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json app.yml ./
COPY bin ./bin
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
RUN npm run build && npm prune --omit=dev

ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 PLANGATE_DATA_DIR=/var/lib/plangate
RUN mkdir -p /var/lib/plangate && chmod 755 /var/lib/plangate
EXPOSE 3000
CMD ["node", "bin/plangate.js", "start"]
