-- yeyak read models, version 1. Applied once per schema by the projector (PgProjector), in a
-- transaction, and recorded in schema_migrations. Never edit a released migration: add 002_*.sql.
-- Every table is a fold of the event log; the projector is its only writer. Names are unqualified:
-- the connection's search_path picks the schema.

CREATE TABLE IF NOT EXISTS schema_migrations (
    version     bigint      PRIMARY KEY,
    name        text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- Where each projection stands in each topic-partition: the offset of the next record to apply.
-- Written in the same transaction as the rows that record's batch changed.
CREATE TABLE projection_offsets (
    projection  text   NOT NULL,
    topic       text   NOT NULL,
    partition   bigint NOT NULL CHECK (partition >= 0),
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    PRIMARY KEY (projection, topic, partition)
);

-- Clinics as registered (ClinicRegistered). booking_days = how many day shares each date has.
CREATE TABLE clinics (
    clinic_id    text   PRIMARY KEY,
    name         text   NOT NULL,
    region       text   NOT NULL,
    booking_days bigint NOT NULL CHECK (booking_days >= 0)
);

-- Doses per clinic, vaccination date and share: 'day0'..'day9' (the share owed to booking day n)
-- or 'pool' (the change window's pool). remaining = capacity - booked.
CREATE TABLE slot_quota (
    clinic_id        text   NOT NULL,
    vaccination_date date   NOT NULL,
    share            text   NOT NULL CHECK (share ~ '^(day[0-9]+|pool)$'),
    capacity         bigint NOT NULL,
    booked           bigint NOT NULL,
    remaining        bigint GENERATED ALWAYS AS (capacity - booked) STORED,
    PRIMARY KEY (clinic_id, vaccination_date, share)
);

-- Every reservation a person held, as the person's partition records it.
CREATE TABLE reservations (
    reservation_id   uuid   PRIMARY KEY,
    subject_id       text   NOT NULL CHECK (subject_id ~ '^[0-9a-f]{32}$'),
    clinic_id        text   NOT NULL,
    vaccination_date date   NOT NULL,
    share            text   NOT NULL CHECK (share ~ '^(day[0-9]+|pool)$'),
    state            text   NOT NULL CHECK (state IN ('active', 'cancelled', 'replaced')),
    booked_at_ms     bigint NOT NULL,
    ended_at_ms      bigint NULL,
    replaces         uuid   NULL
);
CREATE INDEX reservations_subject_id ON reservations (subject_id);
CREATE INDEX reservations_clinic_date ON reservations (clinic_id, vaccination_date) WHERE state = 'active';

-- Every waiting-room ticket. An admitted ticket whose expires_at_ms has passed is expired: time is
-- not an event, so the row keeps saying 'admitted'.
CREATE TABLE queue_tickets (
    ticket         bigint PRIMARY KEY CHECK (ticket >= 0),
    subject_id     text   NOT NULL CHECK (subject_id ~ '^[0-9a-f]{32}$'),
    state          text   NOT NULL CHECK (state IN ('waiting', 'admitted', 'left')),
    issued_at_ms   bigint NOT NULL,
    admitted_at_ms bigint NULL,
    expires_at_ms  bigint NULL
);
CREATE INDEX queue_tickets_waiting ON queue_tickets (ticket) WHERE state = 'waiting';
CREATE INDEX queue_tickets_subject_id ON queue_tickets (subject_id);

-- Position of every waiting ticket: how many waiting tickets have a lower number (0 = next).
CREATE VIEW queue_position AS
SELECT ticket, subject_id, row_number() OVER (ORDER BY ticket) - 1 AS position
FROM queue_tickets
WHERE state = 'waiting';

-- Refusals counted by the event that recorded them, the command refused, and the stable code.
CREATE TABLE rejections (
    source  text   NOT NULL,
    command text   NOT NULL,
    code    text   NOT NULL,
    count   bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (source, command, code)
);
