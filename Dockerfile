# The yeyak binary, for docker-compose.yml (and any container platform).
#
#   docker build -t yeyak .
#
# Build stage: the bundled librdkafka needs cmake and curl's headers (as on a bare machine,
# see scripts/services deps).
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin yeyak \
 && cp target/release/yeyak /usr/local/bin/yeyak

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libcurl4 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/yeyak --create-home yeyak
COPY --from=build /usr/local/bin/yeyak /usr/local/bin/yeyak
USER yeyak
WORKDIR /var/lib/yeyak
ENTRYPOINT ["yeyak"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
