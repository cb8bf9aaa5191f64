//! The supply: about 14,000 clinics over Korea's 17 regions in proportion to population (scaled
//! with the population), each offering the campaign's vaccination dates every
//! [`DATE_STEP_DAYS`] days, with doses for [`SUPPLY_PERCENT`] of the age group; or the clinics
//! of a file (`--clinics`, [`Supply::from_csv`]). The ledger splits every registration evenly
//! over the booking days (`RegisterSupply`).

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;

use yeyak_domain::{Campaign, ClinicId, CommandBody};

use crate::people::REGIONS;

/// Clinics of the 2021 campaign, at the full 16.21 million people.
pub const CLINICS_2021: f64 = 14_000.0;
/// Days between two offered vaccination dates.
pub const DATE_STEP_DAYS: i64 = 3;
/// Doses for this share of the age group, in percent.
pub const SUPPLY_PERCENT: u64 = 100;

/// One clinic: its id, name, region (an index into [`REGIONS`]) and road address (from a
/// clinics file's optional `address` column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub id: ClinicId,
    pub name: String,
    pub region: u8,
    pub address: Option<String>,
}

/// The clinics and what each registers.
#[derive(Debug, Clone)]
pub struct Supply {
    pub sites: Vec<Site>,
    /// Clinic indexes of each region.
    pub by_region: Vec<Vec<u32>>,
    pub dates: Vec<NaiveDate>,
    /// Doses each clinic registers for each date (generated); with a clinics file, the mean
    /// over its clinics and dates, rounded up.
    pub doses_per_date: u32,
    /// Doses of each clinic (row) and date (column): `doses[site * dates.len() + date]`; 0 is
    /// a date the clinic does not offer.
    pub doses: Vec<u32>,
}

/// The header of a clinics file.
pub const CLINICS_HEADER: &str = "id,region,name,date,doses";
/// The header of a clinics file whose rows also give the clinic's road address (may be empty;
/// no comma in it).
pub const CLINICS_HEADER_WITH_ADDRESS: &str = "id,region,name,date,doses,address";

/// A clinics file that cannot be used: the line (1 is the header) and the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("clinics file, line {line}, field `{field}`: {problem}")]
pub struct ClinicsFileError {
    pub line: usize,
    pub field: &'static str,
    pub problem: String,
}

fn refuse(line: usize, field: &'static str, problem: impl Into<String>) -> ClinicsFileError {
    ClinicsFileError {
        line,
        field,
        problem: problem.into(),
    }
}

/// One row of a clinics file, checked.
struct Row {
    id: ClinicId,
    region: u8,
    name: String,
    date: NaiveDate,
    doses: u32,
    address: Option<String>,
}

/// The `address` field of a row: absent, empty (none), or 1 to 100 characters.
fn address_field(n: usize, field: Option<&str>) -> Result<Option<String>, ClinicsFileError> {
    match field {
        None | Some("") => Ok(None),
        Some(a) if a.chars().count() > 100 => {
            Err(refuse(n, "address", "longer than 100 characters"))
        }
        Some(a) => Ok(Some(a.to_owned())),
    }
}

fn parse_row(
    campaign: &Campaign,
    n: usize,
    text: &str,
    header: &str,
) -> Result<Row, ClinicsFileError> {
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    let expected = header.split(',').count();
    if fields.len() != expected {
        return Err(refuse(
            n,
            "id",
            format!("{} fields, expected {expected} ({header})", fields.len()),
        ));
    }
    let id = ClinicId::new(fields[0]).ok_or_else(|| {
        refuse(
            n,
            "id",
            format!(
                "`{}` is not a clinic id (1 to 64 letters, digits, `-`, `_`, `.`, `:`)",
                fields[0]
            ),
        )
    })?;
    let region = REGIONS
        .iter()
        .position(|(name, _)| *name == fields[1])
        .ok_or_else(|| {
            let names: Vec<&str> = REGIONS.iter().map(|(name, _)| *name).collect();
            refuse(
                n,
                "region",
                format!("`{}` is not one of {}", fields[1], names.join(", ")),
            )
        })?;
    if fields[2].is_empty() || fields[2].chars().count() > 80 {
        return Err(refuse(n, "name", "empty or longer than 80 characters"));
    }
    let date = NaiveDate::parse_from_str(fields[3], "%Y-%m-%d").map_err(|_| {
        refuse(
            n,
            "date",
            format!("`{}` is not a date (YYYY-MM-DD)", fields[3]),
        )
    })?;
    let (first, last) = (
        campaign.vaccination.first_date,
        campaign.vaccination.last_date,
    );
    if date < first || date > last {
        return Err(refuse(
            n,
            "date",
            format!("{date} is outside the campaign's vaccination dates ({first} to {last})"),
        ));
    }
    let doses = fields[4]
        .parse::<u32>()
        .ok()
        .filter(|d| *d > 0)
        .ok_or_else(|| {
            refuse(
                n,
                "doses",
                format!("`{}` is not a whole number of doses from 1", fields[4]),
            )
        })?;
    Ok(Row {
        id,
        region: region as u8,
        name: fields[2].to_owned(),
        date,
        doses,
        address: address_field(n, fields.get(5).copied())?,
    })
}

impl Supply {
    /// Clinics for `scale` (people / 16.21 million), at least one per region, with doses for
    /// [`SUPPLY_PERCENT`] of `eligible`.
    pub fn generate(campaign: &Campaign, scale: f64, eligible: u32) -> Supply {
        let total: f64 = REGIONS.iter().map(|(_, p)| p).sum();
        let wanted = (CLINICS_2021 * scale).round().max(REGIONS.len() as f64);
        let mut sites = Vec::new();
        let mut by_region = vec![Vec::new(); REGIONS.len()];
        for (r, (name, population)) in REGIONS.iter().enumerate() {
            let count = ((wanted * population / total).round() as usize).max(1);
            for k in 0..count {
                by_region[r].push(sites.len() as u32);
                sites.push(Site {
                    id: ClinicId::new(&format!("{name}-{:04}", k + 1))
                        .expect("a region name and a number make a valid clinic id"),
                    name: format!("{name} clinic {}", k + 1),
                    region: r as u8,
                    address: None,
                });
            }
        }
        let dates = offered_dates(campaign);
        let slots = sites.len() * dates.len();
        let doses = (u64::from(eligible) * SUPPLY_PERCENT / 100).div_ceil(slots.max(1) as u64);
        let doses_per_date = doses.clamp(1, u64::from(u32::MAX)) as u32;
        Supply {
            sites,
            by_region,
            dates,
            doses_per_date,
            doses: vec![doses_per_date; slots],
        }
    }

    /// The clinics of a file: a header line [`CLINICS_HEADER`] (or
    /// [`CLINICS_HEADER_WITH_ADDRESS`]), then one line per clinic and vaccination date
    /// (`seoul-0001,seoul,Jongno health centre,2021-08-26,120`, then `,서울 종로구 세종대로 110`
    /// with the address column). Every region must have a clinic (people live in all of them);
    /// a clinic keeps one region, name and address; a date is within the campaign's
    /// vaccination dates and given once per clinic.
    pub fn from_csv(campaign: &Campaign, text: &str) -> Result<Supply, ClinicsFileError> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        let header = match lines.next().map(|(_, h)| h.trim()) {
            Some(h) if h == CLINICS_HEADER || h == CLINICS_HEADER_WITH_ADDRESS => h,
            _ => {
                return Err(refuse(
                    1,
                    "id",
                    format!(
                        "the first line must be `{CLINICS_HEADER}` or `{CLINICS_HEADER_WITH_ADDRESS}`"
                    ),
                ));
            }
        };
        let mut rows = Vec::new();
        for (n, line) in lines {
            if !line.trim().is_empty() && !line.starts_with('#') {
                rows.push((n, parse_row(campaign, n, line, header)?));
            }
        }
        let dates: Vec<NaiveDate> = rows
            .iter()
            .map(|(_, r)| r.date)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut sites: Vec<Site> = Vec::new();
        let mut index: HashMap<ClinicId, usize> = HashMap::new();
        let mut cells: HashMap<(usize, NaiveDate), u32> = HashMap::new();
        for (n, row) in rows {
            let site = *index.entry(row.id.clone()).or_insert_with(|| {
                sites.push(Site {
                    id: row.id.clone(),
                    name: row.name.clone(),
                    region: row.region,
                    address: row.address.clone(),
                });
                sites.len() - 1
            });
            if sites[site].region != row.region || sites[site].name != row.name {
                return Err(refuse(
                    n,
                    "region",
                    format!("clinic {} was given another region or name above", row.id),
                ));
            }
            if sites[site].address != row.address {
                return Err(refuse(
                    n,
                    "address",
                    format!("clinic {} was given another address above", row.id),
                ));
            }
            if cells.insert((site, row.date), row.doses).is_some() {
                return Err(refuse(
                    n,
                    "date",
                    format!("clinic {} has {} twice", row.id, row.date),
                ));
            }
        }
        let mut by_region = vec![Vec::new(); REGIONS.len()];
        for (i, site) in sites.iter().enumerate() {
            by_region[usize::from(site.region)].push(i as u32);
        }
        if let Some(r) = by_region.iter().position(Vec::is_empty) {
            return Err(refuse(
                text.lines().count(),
                "region",
                format!(
                    "no clinic in region {} (people live in every region)",
                    REGIONS[r].0
                ),
            ));
        }
        let mut doses = vec![0; sites.len() * dates.len()];
        for ((site, date), n) in cells {
            let d = dates
                .binary_search(&date)
                .expect("every date is in the union");
            doses[site * dates.len() + d] = n;
        }
        let total: u64 = doses.iter().map(|d| u64::from(*d)).sum();
        let doses_per_date = total.div_ceil(doses.len() as u64).min(u64::from(u32::MAX)) as u32;
        Ok(Supply {
            sites,
            by_region,
            dates,
            doses_per_date,
            doses,
        })
    }

    /// Doses of a clinic (by index) on a date (by index).
    pub fn doses_of(&self, site: usize, date: usize) -> u32 {
        self.doses[site * self.dates.len() + date]
    }

    /// Every `RegisterSupply` of the campaign, clinic by clinic, date by date (none for a
    /// date a clinic does not offer).
    pub fn commands(&self) -> impl Iterator<Item = CommandBody> + '_ {
        self.sites.iter().enumerate().flat_map(move |(s, site)| {
            self.dates
                .iter()
                .enumerate()
                .filter(move |(d, _)| self.doses_of(s, *d) > 0)
                .map(move |(d, &date)| CommandBody::RegisterSupply {
                    clinic: site.id.clone(),
                    name: site.name.clone(),
                    region: REGIONS[usize::from(site.region)].0.to_owned(),
                    date,
                    doses: self.doses_of(s, d),
                    address: site.address.clone(),
                    operator: None,
                })
        })
    }

    pub fn doses_total(&self) -> u64 {
        self.doses.iter().map(|d| u64::from(*d)).sum()
    }
}

/// The campaign's vaccination dates, every [`DATE_STEP_DAYS`] from the first.
fn offered_dates(campaign: &Campaign) -> Vec<NaiveDate> {
    let (first, last) = (
        campaign.vaccination.first_date,
        campaign.vaccination.last_date,
    );
    (0..)
        .map(|k| first + chrono::Duration::days(k * DATE_STEP_DAYS))
        .take_while(|d| *d <= last)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_region(extra: &str) -> String {
        let mut text = format!("{CLINICS_HEADER}\n");
        for (name, _) in REGIONS {
            text.push_str(&format!("{name}-1,{name},{name} centre,2021-08-26,10\n"));
        }
        text + extra
    }

    #[test]
    fn a_clinics_file_gives_each_clinic_its_own_doses_per_date() {
        let campaign = Campaign::default_2021();
        let text =
            every_region("seoul-2,seoul,Jongno,2021-08-27,7\nseoul-2,seoul,Jongno,2021-09-01,3\n");
        let supply = Supply::from_csv(&campaign, &text).unwrap();
        assert_eq!(supply.sites.len(), 18);
        assert_eq!(supply.dates.len(), 3);
        assert_eq!(supply.doses_total(), 17 * 10 + 7 + 3);
        assert_eq!(
            supply.commands().count(),
            19,
            "no registration for a date not offered"
        );
        assert_eq!(supply.by_region[0].len(), 2);
    }

    #[test]
    fn a_clinics_file_may_give_each_clinic_its_address() {
        let campaign = Campaign::default_2021();
        let mut text = format!("{CLINICS_HEADER_WITH_ADDRESS}\n");
        for (name, _) in REGIONS {
            text.push_str(&format!("{name}-1,{name},{name} centre,2021-08-26,10,\n"));
        }
        text.push_str("seoul-2,seoul,Jongno,2021-08-27,7,서울 종로구 세종대로 110\n");
        let supply = Supply::from_csv(&campaign, &text).unwrap();
        let addresses: Vec<Option<String>> = supply
            .commands()
            .filter_map(|c| match c {
                CommandBody::RegisterSupply { address, .. } => Some(address),
                _ => None,
            })
            .collect();
        assert_eq!(addresses.iter().filter(|a| a.is_none()).count(), 17);
        assert_eq!(
            addresses.last().unwrap().as_deref(),
            Some("서울 종로구 세종대로 110")
        );
        let moved = text.clone() + "seoul-2,seoul,Jongno,2021-08-29,7,부산 중구 중앙대로 1\n";
        let error = Supply::from_csv(&campaign, &moved).unwrap_err();
        assert_eq!((error.line, error.field), (20, "address"));
        let long = text + &format!("jeju-2,jeju,X,2021-08-26,1,{}\n", "가".repeat(101));
        assert_eq!(
            Supply::from_csv(&campaign, &long).unwrap_err().field,
            "address"
        );
        let short_row = format!("{CLINICS_HEADER_WITH_ADDRESS}\nseoul-1,seoul,S,2021-08-26,1\n");
        assert_eq!(
            Supply::from_csv(&campaign, &short_row).unwrap_err().field,
            "id"
        );
    }

    #[test]
    fn a_clinics_file_with_an_error_is_refused_with_its_line_and_field() {
        let campaign = Campaign::default_2021();
        let cases = [
            ("jeju-2,atlantis,X,2021-08-26,1\n", 19, "region"),
            ("jeju-2,jeju,X,2021-13-01,1\n", 19, "date"),
            ("jeju-2,jeju,X,2019-08-26,1\n", 19, "date"),
            ("jeju-2,jeju,X,2021-08-26,0\n", 19, "doses"),
            ("jeju-2,jeju,X,2021-08-26,many\n", 19, "doses"),
            ("jeju-1,jeju,jeju centre,2021-08-26,5\n", 19, "date"),
            ("jeju-1,seoul,jeju centre,2021-08-27,5\n", 19, "region"),
            ("jeju-2,jeju,,2021-08-26,1\n", 19, "name"),
            ("jeju-2,jeju,X,2021-08-26\n", 19, "id"),
            ("bad id!,jeju,X,2021-08-26,1\n", 19, "id"),
        ];
        for (extra, line, field) in cases {
            let error = Supply::from_csv(&campaign, &every_region(extra)).err();
            let error = error.unwrap_or_else(|| panic!("{extra:?} was accepted"));
            assert_eq!(
                (error.line, error.field),
                (line, field),
                "{extra:?}: {error}"
            );
        }
        let missing = Supply::from_csv(
            &campaign,
            &format!("{CLINICS_HEADER}\nseoul-1,seoul,S,2021-08-26,1\n"),
        );
        assert_eq!(missing.unwrap_err().field, "region");
        assert_eq!(
            Supply::from_csv(&campaign, "id,doses\n").unwrap_err().line,
            1
        );
    }

    #[test]
    fn the_full_campaign_has_about_14000_clinics_in_every_region() {
        let supply = Supply::generate(&Campaign::default_2021(), 1.0, 16_210_000);
        assert!(
            (13_990..=14_010).contains(&supply.sites.len()),
            "{}",
            supply.sites.len()
        );
        assert!(supply.by_region.iter().all(|r| !r.is_empty()));
        assert!(supply.doses_total() >= 16_210_000);
        let tiny = Supply::generate(&Campaign::default_2021(), 0.0001, 1_621);
        // At least one per region, so a little more than the scale asks for.
        assert!(
            (17..=25).contains(&tiny.sites.len()),
            "{}",
            tiny.sites.len()
        );
    }
}
