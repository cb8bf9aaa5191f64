// yeyak: Korea's 17 regions, named in the page's language. Shared by the citizen's page and the
// operator's (each loads it before its own script). A region is the supply's code ("busan") or
// its Korean name ("부산"); anything else is shown as given.
"use strict";

window.yeyakRegionName = (() => {
  const REGIONS = {
    seoul: ["서울", "Seoul"], busan: ["부산", "Busan"], daegu: ["대구", "Daegu"], incheon: ["인천", "Incheon"],
    gwangju: ["광주", "Gwangju"], daejeon: ["대전", "Daejeon"], ulsan: ["울산", "Ulsan"], sejong: ["세종", "Sejong"],
    gyeonggi: ["경기", "Gyeonggi"], gangwon: ["강원", "Gangwon"], chungbuk: ["충북", "North Chungcheong"],
    chungnam: ["충남", "South Chungcheong"], jeonbuk: ["전북", "North Jeolla"], jeonnam: ["전남", "South Jeolla"],
    gyeongbuk: ["경북", "North Gyeongsang"], gyeongnam: ["경남", "South Gyeongsang"], jeju: ["제주", "Jeju"],
  };
  // The name of a non-empty `region` in `lang` ("ko" or "en").
  return (region, lang) => {
    const key = String(region).trim().toLowerCase();
    const names = REGIONS[key] || Object.values(REGIONS).find(([ko]) => ko === key);
    return names ? names[lang === "ko" ? 0 : 1] : String(region);
  };
})();
