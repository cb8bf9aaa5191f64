//! The supply: about 14,000 clinics over Korea's 17 regions in proportion to population (scaled
//! with the population), each offering the campaign's vaccination dates every
//! [`DATE_STEP_DAYS`] days, with doses for [`SUPPLY_PERCENT`] of the age group. The ledger
//! splits every registration evenly over the booking days (`RegisterSupply`).

use chrono::NaiveDate;

use yeyak_domain::{Campaign, ClinicId, CommandBody};

use crate::people::REGIONS;

/// Clinics of the 2021 campaign, at the full 16.21 million people.
pub const CLINICS_2021: f64 = 14_000.0;
/// Days between two offered vaccination dates.
pub const DATE_STEP_DAYS: i64 = 3;
/// Doses for this share of the age group, in percent.
pub const SUPPLY_PERCENT: u64 = 100;

/// One clinic: its id, name and region (an index into [`REGIONS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub id: ClinicId,
    pub name: String,
    pub region: u8,
}

/// The clinics and what each registers.
#[derive(Debug, Clone)]
pub struct Supply {
    pub sites: Vec<Site>,
    /// Clinic indexes of each region.
    pub by_region: Vec<Vec<u32>>,
    pub dates: Vec<NaiveDate>,
    /// Doses each clinic registers for each date.
    pub doses_per_date: u32,
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
                });
            }
        }
        let dates = offered_dates(campaign);
        let slots = (sites.len() * dates.len()) as u64;
        let doses = (u64::from(eligible) * SUPPLY_PERCENT / 100).div_ceil(slots.max(1));
        Supply {
            sites,
            by_region,
            dates,
            doses_per_date: doses.clamp(1, u64::from(u32::MAX)) as u32,
        }
    }

    /// Every `RegisterSupply` of the campaign, clinic by clinic, date by date.
    pub fn commands(&self) -> impl Iterator<Item = CommandBody> + '_ {
        self.sites.iter().flat_map(move |site| {
            self.dates
                .iter()
                .map(move |&date| CommandBody::RegisterSupply {
                    clinic: site.id.clone(),
                    name: site.name.clone(),
                    region: REGIONS[usize::from(site.region)].0.to_owned(),
                    date,
                    doses: self.doses_per_date,
                    operator: None,
                })
        })
    }

    pub fn doses_total(&self) -> u64 {
        (self.sites.len() * self.dates.len()) as u64 * u64::from(self.doses_per_date)
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
