-- yeyak read models, version 2: the queue's measured admission rate and each waiting ticket's ETA.
-- Never edit a released migration: add 003_*.sql.
--
-- The rate is measured in event time (the campaign's own clock, as recorded by the log), never
-- the database's clock: the admissions of the last 60 seconds before the latest admission.
-- A queue that admits nobody yet has no rate, and its tickets no ETA (NULL), rather than an
-- invented figure. The ETA range is the time to admit everyone ahead and the ticket itself at
-- that rate, from 80% to 125% of it (the rate of the next minute is not the last one's).

CREATE VIEW queue_admission_rate AS
WITH latest AS (
    SELECT max(admitted_at_ms) AS at_ms FROM queue_tickets WHERE admitted_at_ms IS NOT NULL
)
SELECT latest.at_ms AS measured_at_ms,
       count(t.ticket) AS admitted_last_minute,
       count(t.ticket) / 60.0 AS admitted_per_s
FROM latest
LEFT JOIN queue_tickets t
       ON t.admitted_at_ms IS NOT NULL AND t.admitted_at_ms > latest.at_ms - 60000
GROUP BY latest.at_ms;

CREATE OR REPLACE VIEW queue_position AS
SELECT w.ticket,
       w.subject_id,
       w.position,
       CASE WHEN r.n > 0 THEN ceil((w.position + 1) * 60::numeric / r.n) END::bigint AS eta_s,
       CASE WHEN r.n > 0 THEN floor((w.position + 1) * 48::numeric / r.n) END::bigint AS eta_low_s,
       CASE WHEN r.n > 0 THEN ceil((w.position + 1) * 75::numeric / r.n) END::bigint AS eta_high_s
FROM (
    SELECT ticket, subject_id, row_number() OVER (ORDER BY ticket) - 1 AS position
    FROM queue_tickets
    WHERE state = 'waiting'
) w
-- n: admissions in the last minute; (p + 1) * 60 / n seconds, 48 / n and 75 / n for the range,
-- in exact integer arithmetic.
CROSS JOIN (SELECT coalesce(max(admitted_last_minute), 0) AS n FROM queue_admission_rate) r;
