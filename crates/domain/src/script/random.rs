//! Random scenario scripts for property tests: a few people, clinics and instants chosen so
//! that bookings, changes, cancellations, sell-outs and rule violations all happen often.

use proptest::prelude::*;
use proptest::strategy::Union;

const PEOPLE: [(&str, &str); 6] = [
    ("a", "1990-05-09"),   // digit 9: the first booking day
    ("b", "1985-02-19"),   // digit 9
    ("s0", "1992-03-10"),  // digit 0: the second booking day
    ("s3", "1988-11-13"),  // digit 3
    ("s60", "1960-03-09"), // not eligible
    ("y", "2003-12-31"),   // the youngest eligible, digit 1
];
const INSTANTS: [&str; 10] = [
    "2021-08-01T09:00+09:00", // before the campaign
    "2021-08-09T20:00+09:00", // booking day 0 (digit 9) opens
    "2021-08-09T20:05+09:00",
    "2021-08-10T20:30+09:00", // booking day 1 (digit 0)
    "2021-08-13T21:00+09:00", // booking day 4 (digit 3)
    "2021-08-19T18:00+09:00", // the last booking day closes
    "2021-08-19T20:00+09:00", // the change window opens
    "2021-08-20T10:00+09:00",
    "2021-08-20T10:20+09:00",
    "2021-09-20T10:00+09:00", // the campaign is closed
];

/// One of `items`, each as likely as its weight.
fn weighted<T: Clone + std::fmt::Debug + 'static>(items: &[(u32, T)]) -> Union<Just<T>> {
    Union::new_weighted(
        items
            .iter()
            .map(|(weight, item)| (*weight, Just(item.clone())))
            .collect(),
    )
}

/// An index into `PEOPLE`: mostly the people whose booking day comes first.
fn person() -> impl Strategy<Value = usize> {
    weighted(&[(3, 0), (2, 1), (2, 2), (1, 3), (1, 4), (1, 5)])
}

/// An index into `INSTANTS`: mostly the first booking days and the change window.
fn instant() -> impl Strategy<Value = usize> {
    weighted(&[
        (1, 0),
        (3, 1),
        (2, 2),
        (2, 3),
        (1, 4),
        (2, 5),
        (2, 6),
        (3, 7),
        (2, 8),
        (1, 9),
    ])
}

fn clinic() -> impl Strategy<Value = &'static str> {
    weighted(&[(3, "c1"), (2, "c2"), (1, "c3")]) // c3 is never supplied up front
}

fn date() -> impl Strategy<Value = &'static str> {
    weighted(&[
        (3, "2021-08-30"),
        (2, "2021-09-02"),
        (1, "2021-08-31"),
        (1, "2021-10-05"),
    ]) // the last is out of range
}

fn share() -> impl Strategy<Value = &'static str> {
    weighted(&[(2, "pool"), (2, "day0"), (1, "day9")])
}

fn pick<const N: usize>(items: [&'static str; N]) -> impl Strategy<Value = &'static str> {
    (0..N).prop_map(move |i| items[i])
}

/// One step: one or a few script lines at one instant.
fn step() -> impl Strategy<Value = Vec<String>> {
    let verify = |p: usize, device: &str| {
        format!(
            "verify {} born={} device={device}",
            PEOPLE[p].0, PEOPLE[p].1
        )
    };
    let doses = prop_oneof![4 => 1u32..4, 1 => Just(0u32), 1 => 4u32..40];
    prop_oneof![
        3 => (person(), pick(["pc", "phone"]), pick(["kakao", "naver", "pass"]))
            .prop_map(move |(p, d, m)| vec![format!("{} method={m}", verify(p, d))]),
        2 => person().prop_map(|p| vec![format!("enqueue {}", PEOPLE[p].0)]),
        1 => person().prop_map(|p| vec![format!("leave {}", PEOPLE[p].0)]),
        2 => (1u32..4, pick(["1", "30"])).prop_map(|(n, ttl)| vec![format!("admit {n} ttl_min={ttl}")]),
        2 => (person(), clinic(), date())
            .prop_map(|(p, c, d)| vec![format!("book {} clinic={c} date={d}", PEOPLE[p].0)]),
        1 => person().prop_map(|p| vec![format!("cancel {}", PEOPLE[p].0)]),
        1 => (person(), clinic(), date())
            .prop_map(|(p, c, d)| vec![format!("rebook {} clinic={c} date={d}", PEOPLE[p].0)]),
        // Whole journeys, so that bookings, changes and cancellations happen often.
        6 => (person(), clinic(), date(), pick(["book", "rebook", "cancel"])).prop_map(
            move |(p, c, d, verb)| {
                let name = PEOPLE[p].0;
                if verb == "cancel" {
                    return vec![verify(p, "pc"), format!("cancel {name}")];
                }
                vec![
                    verify(p, "pc"),
                    format!("enqueue {name}"),
                    "admit 10".to_owned(),
                    format!("{verb} {name} clinic={c} date={d}"),
                ]
            }
        ),
        1 => (clinic(), date(), doses.clone(), pick(["Clinic", "Other"]))
            .prop_map(|(c, d, n, name)| vec![format!("supply {c} clinic={c} date={d} doses={n} name={name}")]),
        2 => clinic().prop_map(|c| vec![format!("tick {c}")]),
        2 => (clinic(), date(), share(), clinic(), date(), share(), doses).prop_map(
            |(fc, fd, fs, tc, td, ts, n)| vec![format!("rebalance {fc} from={fc}/{fd}/{fs} to={tc}/{td}/{ts} doses={n}")]
        ),
    ]
}

/// A random script: supply up front, then steps at non-decreasing instants.
pub fn script() -> impl Strategy<Value = String> {
    prop::collection::vec((instant(), step()), 1..40).prop_map(|mut steps| {
        steps.sort_by_key(|(instant, _)| *instant);
        let mut text = format!("at {}\n", INSTANTS[0]);
        for (clinic, date, doses) in [
            ("c1", "2021-08-30", 30),
            ("c1", "2021-09-02", 20),
            ("c2", "2021-08-30", 20),
            ("c2", "2021-09-02", 10),
        ] {
            text.push_str(&format!(
                "supply {clinic} clinic={clinic} date={date} doses={doses}\n"
            ));
        }
        let mut now = 0;
        for (instant, lines) in steps {
            if instant != now {
                text.push_str(&format!("at {}\n", INSTANTS[instant]));
                now = instant;
            }
            for line in lines {
                text.push_str(&line);
                text.push('\n');
            }
        }
        text
    })
}
