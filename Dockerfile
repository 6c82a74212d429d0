# The cellblock image for docker-compose.dev.yml: the code, its Debian packages and npm modules,
# the native addon and the compiled TypeScript. Language images are not built here (building
# them needs mounts and namespaces that `docker build` does not grant): the compose file's
# one-shot `images` service builds them into the shared data volume at start.
# Debian 12 with Node.js 22, the platform cellblock targets.
FROM node:22-bookworm

WORKDIR /opt/cellblock
COPY . .

# The same set-up as on a machine (scripts/setup.sh: Debian packages, npm modules from the lock file, native addon,
# TypeScript), minus the language images.
RUN CELLBLOCK_SKIP_IMAGES=1 bash scripts/setup.sh \
    && apt-get clean && rm -rf /var/lib/apt/lists/*

EXPOSE 8080
ENTRYPOINT ["bin/cellblock"]
CMD ["--help"]
