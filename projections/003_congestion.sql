-- yeyak read models, version 3: the congestion light of each verification method.
-- Never edit a released migration: add 004_*.sql.
--
-- One row per method: its latest CongestionReported (the waiting room decides every report, so
-- "latest" is the log's order). The gateway computes the light from the identity provider's
-- measured wait and health and reports it when it changes and every --congestion-report-s
-- seconds. reported_at_ms is event time; a row whose report is old means no gateway reports any
-- more, which readers judge (time is not an event, so the row keeps its last light).
CREATE TABLE congestion (
    method           text     PRIMARY KEY,
    level            text     NOT NULL CHECK (level IN ('green', 'yellow', 'red', 'grey')),
    wait_ms          bigint   NOT NULL CHECK (wait_ms >= 0),
    in_flight        bigint   NOT NULL CHECK (in_flight >= 0),
    capacity         bigint   NOT NULL CHECK (capacity >= 0),
    -- thousandths of the recent verifications that failed; failure_ratio is the same as a ratio
    failure_permille bigint   NOT NULL CHECK (failure_permille BETWEEN 0 AND 1000),
    failure_ratio    numeric(4, 3) GENERATED ALWAYS AS (failure_permille / 1000.0) STORED,
    provider_up      boolean  NOT NULL,
    gateway          text     NOT NULL,
    reported_at_ms   bigint   NOT NULL
);
