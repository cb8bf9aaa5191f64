//! The simulated population: birth dates over the real birth years of the 18-49 group of 2021
//! (weighted by how many were born each year, every day of the year, so the ten booking days
//! differ in size as they did), a share of people outside the group who try anyway, and a home
//! region drawn by Korea's population.
//!
//! No resident number exists here: the identity edge is not what this simulates, so a person's
//! subject id is made up directly (see [`subject_of`]). The birth facts a verification carries
//! are read in one place, [`birth`], so that a change of the `Verify` command touches only it.

use chrono::{Datelike, NaiveDate};

use yeyak_domain::{Campaign, CommandBody, DeviceId, Method, SubjectId};

use crate::rng::{Rng, mix};

/// People outside the 18-49 group who try anyway, per thousand of the group.
pub const OUTSIDE_PER_MILLE: u64 = 20;

/// Live births in Korea per year, 1972-2003, in thousands (Statistics Korea, rounded): used
/// only as weights, so that older birth years are larger than younger ones as in 2021.
const BIRTHS_THOUSANDS: [(i32, u32); 32] = [
    (1972, 952),
    (1973, 965),
    (1974, 922),
    (1975, 874),
    (1976, 796),
    (1977, 825),
    (1978, 750),
    (1979, 862),
    (1980, 862),
    (1981, 867),
    (1982, 848),
    (1983, 769),
    (1984, 674),
    (1985, 655),
    (1986, 636),
    (1987, 623),
    (1988, 633),
    (1989, 639),
    (1990, 649),
    (1991, 709),
    (1992, 730),
    (1993, 715),
    (1994, 721),
    (1995, 715),
    (1996, 691),
    (1997, 675),
    (1998, 641),
    (1999, 620),
    (2000, 640),
    (2001, 559),
    (2002, 497),
    (2003, 495),
];

/// Korea's 17 regions and their population in 2021 (millions, rounded): clinics and people are
/// spread in proportion.
pub const REGIONS: [(&str, f64); 17] = [
    ("seoul", 9.51),
    ("busan", 3.35),
    ("daegu", 2.39),
    ("incheon", 2.95),
    ("gwangju", 1.44),
    ("daejeon", 1.45),
    ("ulsan", 1.12),
    ("sejong", 0.37),
    ("gyeonggi", 13.57),
    ("gangwon", 1.54),
    ("chungbuk", 1.60),
    ("chungnam", 2.12),
    ("jeonbuk", 1.79),
    ("jeonnam", 1.83),
    ("gyeongbuk", 2.63),
    ("gyeongnam", 3.31),
    ("jeju", 0.68),
];

/// The population, one entry per person (struct of arrays: 16 million people fit).
#[derive(Debug, Clone)]
pub struct Population {
    pub seed: u64,
    pub births: Vec<NaiveDate>,
    pub regions: Vec<u8>,
    /// How many are in the campaign's age group (the first ones; the rest are outside).
    pub eligible: u32,
}

impl Population {
    /// `eligible` people of the group, then [`OUTSIDE_PER_MILLE`] more outside it.
    pub fn generate(seed: u64, eligible: u32) -> Population {
        let outside = (u64::from(eligible) * OUTSIDE_PER_MILLE / 1000) as u32;
        let total = eligible as usize + outside as usize;
        let mut rng = Rng::new(mix(seed ^ 0x0070_6f70));
        let mut births = Vec::with_capacity(total);
        let mut regions = Vec::with_capacity(total);
        let year_total: u32 = BIRTHS_THOUSANDS.iter().map(|(_, n)| n).sum();
        let region_total: f64 = REGIONS.iter().map(|(_, p)| p).sum();
        for n in 0..total {
            let year = if n < eligible as usize {
                weighted_year(&mut rng, year_total)
            } else if rng.chance(700) {
                rng.between(1962, 1971) as i32
            } else {
                rng.between(2004, 2005) as i32
            };
            births.push(day_of(year, &mut rng));
            regions.push(weighted_region(&mut rng, region_total));
        }
        Population {
            seed,
            births,
            regions,
            eligible,
        }
    }

    pub fn len(&self) -> usize {
        self.births.len()
    }

    pub fn is_empty(&self) -> bool {
        self.births.is_empty()
    }

    /// The people (indexes) of each booking day, in order: who may book on day `d`.
    pub fn cohorts(&self, campaign: &Campaign) -> Vec<Vec<u32>> {
        let mut cohorts = vec![Vec::new(); campaign.booking_days.len()];
        for (n, &born) in self.births.iter().enumerate() {
            if let Some(day) = birth::booking_day(campaign, born) {
                cohorts[usize::from(day)].push(n as u32);
            }
        }
        cohorts
    }
}

fn weighted_year(rng: &mut Rng, total: u32) -> i32 {
    let mut pick = rng.below(u64::from(total)) as u32;
    for (year, n) in BIRTHS_THOUSANDS {
        if pick < n {
            return year;
        }
        pick -= n;
    }
    BIRTHS_THOUSANDS[BIRTHS_THOUSANDS.len() - 1].0
}

fn day_of(year: i32, rng: &mut Rng) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or_default();
    let days = if NaiveDate::from_ymd_opt(year, 12, 31).is_some_and(|d| d.ordinal() == 366) {
        366
    } else {
        365
    };
    first + chrono::Duration::days(rng.below(days) as i64)
}

fn weighted_region(rng: &mut Rng, total: f64) -> u8 {
    let mut pick = rng.unit() * total;
    for (i, (_, p)) in REGIONS.iter().enumerate() {
        if pick < *p {
            return i as u8;
        }
        pick -= p;
    }
    (REGIONS.len() - 1) as u8
}

/// A person's subject id: eight bytes of a hash of the seed and the person's number, the
/// number itself (big-endian) in bytes 8-11, four more bytes of hash. The hash spreads people
/// over partitions and the opening draw as real keyed hashes do; the number lets the simulator
/// find the person an event names without a table of 16 million entries.
pub fn subject_of(seed: u64, person: u32) -> SubjectId {
    let h = mix(seed ^ mix(u64::from(person) ^ 0x5375_626a));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&h.to_be_bytes());
    bytes[8..12].copy_from_slice(&person.to_be_bytes());
    bytes[12..].copy_from_slice(&mix(h).to_be_bytes()[..4]);
    SubjectId(bytes)
}

/// The person a simulated subject id names (see [`subject_of`]).
pub fn person_of(subject: &SubjectId) -> u32 {
    let mut n = [0u8; 4];
    n.copy_from_slice(&subject.0[8..12]);
    u32::from_be_bytes(n)
}

/// A person's device: `second` is the other phone some also try at once.
pub fn device_of(person: u32, second: bool) -> DeviceId {
    let text = if second {
        format!("p{person:x}b")
    } else {
        format!("p{person:x}")
    };
    DeviceId::new(&text).expect("a short hex name is a valid device id")
}

/// The birth facts, in one place: what a verification tells the ledger and which booking day
/// a birth date falls on.
pub mod birth {
    use super::*;
    use yeyak_domain::BirthFacts;

    /// The `Verify` command of a person born on `born`, as the identity edge would send it.
    pub fn verify(
        subject: SubjectId,
        born: NaiveDate,
        method: Method,
        device: DeviceId,
    ) -> CommandBody {
        let facts = BirthFacts::of_date(born);
        CommandBody::Verify {
            subject,
            birth_year: facts.year,
            cohort_digit: facts.cohort_digit,
            method,
            device,
        }
    }

    /// The booking day (index in the campaign) of a person born on `born`.
    pub fn booking_day(campaign: &Campaign, born: NaiveDate) -> Option<u8> {
        campaign.booking_day_of(BirthFacts::of_date(born))
    }

    /// Whether a person born on `born` is in the campaign's age group.
    pub fn eligible(campaign: &Campaign, born: NaiveDate) -> bool {
        campaign.is_eligible(BirthFacts::of_date(born))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_id_names_its_person() {
        for n in [0u32, 1, 77, 16_209_999] {
            assert_eq!(person_of(&subject_of(9, n)), n);
        }
        assert_ne!(subject_of(9, 1), subject_of(10, 1));
    }

    #[test]
    fn booking_days_differ_in_size_as_the_days_of_the_month_do() {
        let campaign = Campaign::default_2021();
        let population = Population::generate(1, 200_000);
        let sizes: Vec<usize> = population.cohorts(&campaign).iter().map(Vec::len).collect();
        // Digit 1 (1st, 11th, 21st, 31st) is the largest day, digits 0 and 9 the smallest.
        let (digit9, digit0, digit1) = (sizes[0], sizes[1], sizes[2]);
        assert!(digit1 > digit0 && digit1 > digit9, "{sizes:?}");
        assert!(population.len() > 200_000);
    }
}
