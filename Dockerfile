# The yeyak binary, for docker-compose.yml (and any container platform).
#
#   docker build -t yeyak .
#
# Build stage: the Kafka client builds librdkafka, OpenSSL, libcurl and zlib from source and links
# them statically (Cargo.toml); it needs cmake besides the image's compiler, perl and make.
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin yeyak \
 && cp target/release/yeyak /usr/local/bin/yeyak

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/yeyak --create-home yeyak
COPY --from=build /usr/local/bin/yeyak /usr/local/bin/yeyak
USER yeyak
WORKDIR /var/lib/yeyak
ENTRYPOINT ["yeyak"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
