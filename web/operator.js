// yeyak: the operator's page. Plain JS, no framework, no build step.
//
// It shows what GET /admin/status answers, every 2 seconds, today's share first (what citizens
// see now: remaining doses of the share open today per region and clinic, 마감 when none), the
// launch-night controls (pause/resume admissions, their rate, a provider down or up: each a POST
// to /admin/*, recorded in the log with the operator's name), a graph of the last hour drawn
// here as SVG, the refusals by code, the queue depth (waiting, pre-queue),
// the admission rate (measured over the last minute, the controller's current outflow rate and
// the configured one), the live admissions, the congestion light per verification method with
// its measured wait, and the fill (booked / capacity) per booking day and per clinic, date and
// share. One clock: the server's. The page itself loads without a token; every data call carries the admin token, which
// is kept in sessionStorage only (gone when the tab closes) and never in localStorage.
"use strict";

(() => {
  const TOKEN_KEY = "yeyak.admin";
  const LANG_KEY = "yeyak.lang";
  const POLL_MS = 2000;
  const POLL_MAX_MS = 15000;

  const TEXT = {
    ko: {
      skip: "본문 바로가기",
      notice: "운영자 전용 화면입니다. 모든 자료는 관리자 토큰으로만 조회됩니다.",
      title: "사전예약 운영 현황",
      subtitle: "대기열 · 입장 · 혼잡도 · 물량",
      loginHeading: "관리자 토큰을 입력해 주세요",
      loginLead: "서버를 시작할 때 --admin-token으로 정한 토큰입니다. 토큰은 이 탭에만 보관되고 창을 닫으면 지워집니다.",
      tokenLabel: "관리자 토큰",
      tokenRequired: "토큰을 입력해 주세요.",
      connect: "연결",
      connecting: "연결 중…",
      logout: "토큰 지우기",
      statusHeading: "실시간 운영 현황",
      live: "실시간",
      stale: "연결 끊김 · 다시 시도 중",
      serverClock: "서버 시각",
      backendLabel: "원장",
      queueHeading: "대기열과 입장",
      queueDepth: "대기 인원",
      preQueue: "오픈 전 대기",
      opensAt: "오픈 {time}",
      people: "명",
      rateMeasured: "입장 속도 (측정, 최근 1분)",
      perSecond: "명/초",
      rateConfigured: "현재 목표 {now}명/초 · 설정 {conf}명/초",
      admittedLive: "입장 중 (미사용 입장권)",
      admittedTotal: "최대 {max}명 · 누적 입장 {total}명",
      ledgerHeading: "원장 상태",
      undecided: "결정 대기 명령",
      undecidedAtOnce: "내장 원장: 요청 즉시 결정",
      undecidedParts: "{n}개 파티션에 대기 · {s}초 전 측정",
      undecidedUnknown: "알 수 없음: {why}",
      lastDecision: "마지막 결정",
      secondsAgo: "{s}초 전",
      requestsWaiting: "이 게이트웨이에서 응답 대기",
      ledgerOk: "정상",
      ledgerBehind: "처리 지연: 명령이 쌓이는데 결정이 없습니다",
      todayHeading: "오늘 예약 몫 (시민에게 보이는 물량)",
      todayShare: "{share} · {from} – {to}",
      todayNone: "지금 열린 예약일이 없습니다. 다음 오픈: {time}",
      todayNoneEnded: "예약 기간이 끝났습니다.",
      todayRegionsCaption: "지역별 오늘 남은 물량",
      todayClinicsCaption: "기관별 오늘 남은 물량",
      colRegion: "지역",
      colClinicOnly: "기관",
      colRemaining: "남음 / 물량",
      soldOut: "마감",
      remainingOf: "{r} / {c}",
      controlsHeading: "운영 조치",
      pause: "입장 일시정지",
      resume: "입장 재개",
      admissionsRunning: "입장 진행 중 · {rate}명/분 ({src})",
      admissionsPaused: "입장 일시정지됨 · 재개하면 {rate}명/분",
      rateSetBy: "{op} 설정, {at}",
      rateConfiguredSrc: "서버 설정값",
      rateLabel: "입장 속도 (명/분)",
      rateSet: "적용",
      rateInvalid: "1에서 600000 사이의 정수를 입력해 주세요.",
      providersHeading: "본인인증 수단 장애 표시",
      markDown: "장애로 표시",
      markUp: "정상으로 표시",
      providerDown: "장애",
      providerUp: "정상",
      recorded: "기록됨: {what} ({op})",
      didPause: "입장 일시정지", didResume: "입장 재개", didRate: "입장 속도 {rate}명/분",
      didDown: "{m} 장애 표시", didUp: "{m} 정상 표시",
      graphCaption: "최근 1시간: 분당 입장 수(막대)와 대기 인원(선), 서버 시각 기준",
      graphSummary: "{n}분 표본 · 분당 입장 최대 {a}명 · 대기 최대 {q}명",
      graphEmpty: "아직 표본이 없습니다.",
      refusalsHeading: "거절 사유별 건수",
      refusalsCaption: "오류 코드별 거절 건수",
      colCode: "사유 (코드)",
      colAnswered: "응답 (이 게이트웨이, 시작 후)",
      colRecorded: "기록 (원장 로그)",
      noRefusals: "아직 거절된 요청이 없습니다.",
      lightsHeading: "인증 수단별 혼잡도",
      lvl_green: "원활", lvl_yellow: "지연", lvl_red: "혼잡", lvl_grey: "선택 불가",
      waitAbout: "인증 대기 약 {t}",
      recommended: "추천",
      daysHeading: "예약일별 물량",
      daysCaption: "예약일별 예약 수와 물량",
      colDay: "예약일",
      colFill: "예약 / 물량",
      dayLabel: "끝자리 {d}",
      poolLabel: "추가 예약 기간",
      open: "진행 중",
      clinicsHeading: "기관·날짜별 물량",
      clinicsCaption: "기관과 접종 날짜별 예약 수와 물량",
      colClinic: "기관 · 날짜",
      shareLabel: "몫",
      shareAll: "전체",
      noSupply: "등록된 물량이 없습니다.",
      footer1: "yeyak — 대규모 예방접종 예약을 위한 이벤트 기반 예약 원장의 재현 프로젝트입니다.",
      citizenPage: "시민용 예약 화면",
      langToggle: "English",
      langToggleLabel: "Switch to English",
      m_phone: "휴대폰", m_ipin: "아이핀(i-PIN)", m_joint_certificate: "공동인증서", m_financial_certificate: "금융인증서",
      m_kakao: "카카오", m_naver: "네이버", m_pass: "PASS",
      underSecond: "1초 미만", sec: "{n}초", min: "{n}분",
      err: {
        invalid_token: "관리자 토큰이 올바르지 않습니다.",
        admin_disabled: "이 서버는 관리자 기능이 꺼져 있습니다 (--admin-token 없이 시작됨).",
        network: "서버에 연결할 수 없습니다. 자동으로 다시 시도합니다.",
        invalid_rate: "입장 속도는 1에서 600000 사이의 정수(명/분)입니다.",
        internal: "서버가 예상하지 못한 응답을 보냈습니다.",
      },
    },
    en: {
      skip: "Skip to content",
      notice: "For operators only. Every figure here needs the admin token.",
      title: "Pre-booking operations",
      subtitle: "Queue · admissions · lights · doses",
      loginHeading: "Enter the admin token",
      loginLead: "The token the server was started with (--admin-token). It is kept in this tab only and forgotten when the tab closes.",
      tokenLabel: "Admin token",
      tokenRequired: "Please enter the token.",
      connect: "Connect",
      connecting: "Connecting…",
      logout: "Forget token",
      statusHeading: "Live operations",
      live: "Live",
      stale: "Connection lost · retrying",
      serverClock: "Server clock",
      backendLabel: "Ledger",
      queueHeading: "Queue and admissions",
      queueDepth: "Waiting",
      preQueue: "Pre-queue",
      opensAt: "opens {time}",
      people: "",
      rateMeasured: "Admission rate (measured, last minute)",
      perSecond: "/s",
      rateConfigured: "target now {now}/s · configured {conf}/s",
      admittedLive: "Admitted (unused admissions)",
      admittedTotal: "at most {max} · {total} admitted in all",
      ledgerHeading: "Ledger health",
      undecided: "Commands not decided yet",
      undecidedAtOnce: "Embedded ledger: decided when asked",
      undecidedParts: "waiting in {n} partitions · measured {s} s ago",
      undecidedUnknown: "unknown: {why}",
      lastDecision: "Last decision",
      secondsAgo: "{s} s ago",
      requestsWaiting: "Requests waiting at this gateway",
      ledgerOk: "healthy",
      ledgerBehind: "Falling behind: commands wait and nothing is decided",
      todayHeading: "Today's share (what citizens see)",
      todayShare: "{share} · {from} – {to}",
      todayNone: "No booking day is open now. Next opening: {time}",
      todayNoneEnded: "The booking period is over.",
      todayRegionsCaption: "Doses left today per region",
      todayClinicsCaption: "Doses left today per clinic",
      colRegion: "Region",
      colClinicOnly: "Clinic",
      colRemaining: "Left / capacity",
      soldOut: "Sold out",
      remainingOf: "{r} / {c}",
      controlsHeading: "Controls",
      pause: "Pause admissions",
      resume: "Resume admissions",
      admissionsRunning: "Admitting · {rate}/min ({src})",
      admissionsPaused: "Admissions paused · {rate}/min on resume",
      rateSetBy: "set by {op}, {at}",
      rateConfiguredSrc: "server setting",
      rateLabel: "Admission rate (per minute)",
      rateSet: "Set",
      rateInvalid: "Enter a whole number from 1 to 600000.",
      providersHeading: "Identity providers down or up",
      markDown: "Mark down",
      markUp: "Mark up",
      providerDown: "down",
      providerUp: "up",
      recorded: "Recorded: {what} ({op})",
      didPause: "admissions paused", didResume: "admissions resumed", didRate: "admission rate {rate}/min",
      didDown: "{m} marked down", didUp: "{m} marked up",
      graphCaption: "Last hour: admissions per minute (bars) and people waiting (line), by the server's clock",
      graphSummary: "{n} one-minute samples · at most {a} admitted a minute · at most {q} waiting",
      graphEmpty: "No samples yet.",
      refusalsHeading: "Refusals by code",
      refusalsCaption: "Refused requests per error code",
      colCode: "Reason (code)",
      colAnswered: "Answered (this gateway, since start)",
      colRecorded: "Recorded (ledger's log)",
      noRefusals: "Nothing refused yet.",
      lightsHeading: "Lights per verification method",
      lvl_green: "Smooth", lvl_yellow: "Delayed", lvl_red: "Congested", lvl_grey: "Unavailable",
      waitAbout: "wait about {t}",
      recommended: "Recommended",
      daysHeading: "Doses per booking day",
      daysCaption: "Booked and capacity per booking day",
      colDay: "Booking day",
      colFill: "Booked / capacity",
      dayLabel: "Digit {d}",
      poolLabel: "Change window",
      open: "open",
      clinicsHeading: "Doses per clinic and date",
      clinicsCaption: "Booked and capacity per clinic and vaccination date",
      colClinic: "Clinic · date",
      shareLabel: "Share",
      shareAll: "All",
      noSupply: "No doses registered yet.",
      footer1: "yeyak — a re-creation of an event-sourced reservation ledger for mass vaccination booking.",
      citizenPage: "Citizen booking page",
      langToggle: "한국어",
      langToggleLabel: "한국어 화면으로 보기",
      m_phone: "Mobile phone", m_ipin: "i-PIN", m_joint_certificate: "Joint certificate", m_financial_certificate: "Financial certificate",
      m_kakao: "Kakao", m_naver: "Naver", m_pass: "PASS",
      underSecond: "under 1 s", sec: "{n} s", min: "{n} min",
      err: {
        invalid_token: "The admin token is not right.",
        admin_disabled: "Admin endpoints are off on this server (started without --admin-token).",
        network: "Cannot reach the server; retrying automatically.",
        invalid_rate: "The admission rate is a whole number from 1 to 600000 a minute.",
        internal: "The server sent an unexpected answer.",
      },
    },
  };

  let lang = localStorage.getItem(LANG_KEY) === "en" ? "en" : "ko";
  let status = null;          // the last answer of GET /admin/status
  let failures = 0;           // polls failed in a row (network), for the back-off
  let pollTimer = null;
  let share = "all";          // the share the clinic table shows

  const $ = (id) => document.getElementById(id);

  function t(key, vars) {
    let s = key.split(".").reduce((o, k) => (o == null ? undefined : o[k]), TEXT[lang]);
    if (s === undefined) s = key.split(".").reduce((o, k) => (o == null ? undefined : o[k]), TEXT.ko);
    if (s === undefined) return key;
    if (vars) for (const [k, v] of Object.entries(vars)) s = s.split("{" + k + "}").join(String(v));
    return s;
  }

  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === false || v == null) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c != null) node.append(c);
    return node;
  };

  const locale = () => (lang === "ko" ? "ko-KR" : "en-GB");
  const number = (n, digits = 0) =>
    new Intl.NumberFormat(locale(), { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(n);
  const rate = (r) => number(Number(r) || 0, r >= 100 ? 0 : 1);

  // Campaign times are Korean local time, whatever the operator's browser says. A reading of the
  // server's clock (its now, the ledger's last decision) to the second...
  function dateTime(iso) {
    return kst(iso, { second: "2-digit" });
  }

  // ...and the calendar's instants (a booking day's opening and closing) to the minute.
  function calendarTime(iso) {
    return kst(iso, {});
  }

  function kst(iso, extra) {
    const d = new Date(iso);
    if (isNaN(d)) return "–";
    return new Intl.DateTimeFormat(locale(), {
      month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false, timeZone: "Asia/Seoul", ...extra,
    }).format(d);
  }

  function shortDate(iso) {
    const d = new Date(String(iso).slice(0, 10) + "T00:00:00Z");
    if (isNaN(d)) return String(iso);
    return new Intl.DateTimeFormat(locale(), { month: "short", day: "numeric", weekday: "short", timeZone: "UTC" }).format(d);
  }

  function wait(seconds) {
    if (seconds < 1) return t("underSecond");
    if (seconds < 90) return t("sec", { n: Math.round(seconds) });
    return t("min", { n: Math.round(seconds / 60) });
  }

  // The region's name in the page's language (web/regions.js).
  function regionName(region) {
    if (region == null || region === "") return "–";
    return window.yeyakRegionName(region, lang);
  }

  // The refusal codes people meet most, named; any other code is shown as it is.
  const CODE_NAMES = {
    sold_out: ["마감", "Sold out"],
    not_your_booking_day: ["예약일이 아님", "Not their booking day"],
    not_eligible: ["접종 대상 아님", "Not eligible"],
    campaign_closed: ["예약 기간 종료", "Campaign closed"],
    already_reserved: ["이미 예약함", "Already reserved"],
    device_locked: ["다른 기기에서 인증 중", "Another device holds the person"],
    verify_rate_limited: ["10분 내 재인증", "Verified again within 10 minutes"],
    admission_required: ["입장권 없음", "No admission"],
    admission_expired: ["입장 시간 만료", "Admission expired"],
    not_in_change_window: ["변경 기간 아님", "Not in the change window"],
    invalid_token: ["토큰 오류", "Invalid token"],
    invalid_resident_id: ["주민등록번호 오류", "Invalid resident number"],
    method_unavailable: ["인증 수단 장애", "Method unavailable"],
    client_rate_limited: ["요청 과다 (주소별)", "Too many from one address"],
    no_supply: ["물량 없음", "No supply"],
    unavailable: ["서버 응답 불가", "Unavailable"],
    overloaded: ["과부하", "Overloaded"],
  };
  const codeName = (code) => (CODE_NAMES[code] ? CODE_NAMES[code][lang === "ko" ? 0 : 1] : null);

  // A share key of the API ("day0" .. "day9", "pool") as people say it.
  function shareName(key) {
    const day = (status && status.booking_days || []).find((d) => d.share === key);
    if (key === "pool") return t("poolLabel");
    if (day && day.digit != null) return `${t("dayLabel", { d: day.digit })} · ${shortDate(day.opens_at.slice(0, 10))}`;
    return key;
  }

  // ---------------------------------------------------------------- text and views

  function applyText() {
    document.documentElement.lang = lang;
    document.title = t("title");
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    const toggle = $("lang-toggle");
    toggle.textContent = t("langToggle");
    toggle.setAttribute("aria-label", t("langToggleLabel"));
    toggle.setAttribute("lang", lang === "ko" ? "en" : "ko");
  }

  function show(view) {
    for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "view-" + view;
  }

  // What the alert and the last control's line say, as functions of the page's language, so
  // that switching it writes them again.
  let alertShown = null;
  let controlSaid = null;

  function showAlert(text, code) {
    alertShown = { text, code };
    const box = $("alert");
    box.replaceChildren(el("strong", { text: text() }));
    if (code) box.append(el("span", { class: "code", text: code }));
    box.hidden = false;
  }

  function clearAlert() {
    alertShown = null;
    $("alert").hidden = true;
    $("alert").replaceChildren();
  }

  // ---------------------------------------------------------------- the data call

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message || code);
      this.status = status;
      this.code = code;
    }
  }

  async function fetchStatus(token) {
    let res;
    try {
      res = await fetch("/admin/status", { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
    } catch {
      throw new ApiError(0, "network");
    }
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    if (!res.ok) throw new ApiError(res.status, (body && body.error) || "internal", body && body.message);
    if (!body || typeof body !== "object") throw new ApiError(res.status, "internal");
    return body;
  }

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  // A control: POST to /admin/* with the token; the answer's body, or an ApiError.
  async function adminPost(pathname, body) {
    let res;
    try {
      res = await fetch(pathname, {
        method: "POST", cache: "no-store",
        headers: { Authorization: `Bearer ${token()}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "network");
    }
    let answer = null;
    try { answer = await res.json(); } catch { /* not JSON */ }
    if (!res.ok) throw new ApiError(res.status, (answer && answer.error) || "internal", answer && answer.message);
    return answer || {};
  }

  // Runs one control, says what was recorded (or why not), and refreshes the figures.
  async function control(button, pathname, body, said) {
    if (button) button.disabled = true;
    sayControl(null);
    try {
      const answer = await adminPost(pathname, body);
      clearAlert();
      sayControl(() => t("recorded", { what: said(answer), op: answer.operator || "–" }));
      await poll();
    } catch (e) {
      const known = t("err." + e.code) !== "err." + e.code;
      showAlert(() => (known ? t("err." + e.code) : (e.message || t("err.internal"))), e.code);
    } finally {
      if (button) button.disabled = false;
    }
  }

  function sayControl(text) {
    controlSaid = text;
    $("control-done").textContent = text ? text() : "";
  }

  function togglePause() {
    const paused = !!(status && status.admissions && status.admissions.paused);
    control($("pause-toggle"), "/admin/admissions", { paused: !paused }, () => t(paused ? "didResume" : "didPause"));
  }

  function setRate(event) {
    event.preventDefault();
    const input = $("rate-input");
    const err = $("rate-err");
    const value = Number(input.value);
    if (!Number.isInteger(value) || value < 1 || value > 600000) {
      err.textContent = t("rateInvalid");
      err.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    err.hidden = true;
    input.removeAttribute("aria-invalid");
    control($("rate-submit"), "/admin/admissions", { admit_per_min: value }, () => t("didRate", { rate: number(value) }));
  }

  function switchProvider(button, method, outage) {
    control(button, "/admin/providers", { method, outage }, () => t(outage ? "didDown" : "didUp", { m: methodName(method) }));
  }

  const methodName = (m) => (t("m_" + m) === "m_" + m ? m : t("m_" + m));

  function stopPolling() {
    clearTimeout(pollTimer);
    pollTimer = null;
  }

  async function poll() {
    stopPolling();
    const current = token();
    if (!current) return;
    try {
      status = await fetchStatus(current);
      failures = 0;
      clearAlert();
      render();
    } catch (e) {
      if (e.status === 401 || e.status === 404) {
        // A wrong token, or admin endpoints off: ask again rather than poll in vain.
        sessionStorage.removeItem(TOKEN_KEY);
        status = null;
        show("login");
        tokenError(e);
        return;
      }
      failures += 1;
      markStale();
      showAlert(() => t(e.code === "network" ? "err.network" : "err.internal"), e.code);
    }
    const delay = Math.min(POLL_MS * 2 ** Math.min(failures, 3), POLL_MAX_MS);
    if (token()) pollTimer = setTimeout(poll, delay);
  }

  function tokenError(e) {
    const err = $("token-err");
    err.textContent = `${t("err." + e.code) === "err." + e.code ? t("err.internal") : t("err." + e.code)} (${e.code})`;
    err.hidden = false;
    $("admin-token").setAttribute("aria-invalid", "true");
    $("admin-token").focus();
  }

  async function connect(event) {
    event.preventDefault();
    const input = $("admin-token");
    const err = $("token-err");
    err.hidden = true;
    input.removeAttribute("aria-invalid");
    const value = input.value.trim();
    if (!value) {
      err.textContent = t("tokenRequired");
      err.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    const button = $("login-submit");
    button.disabled = true;
    button.textContent = t("connecting");
    try {
      status = await fetchStatus(value);
      sessionStorage.setItem(TOKEN_KEY, value);
      input.value = "";
      failures = 0;
      clearAlert();
      show("status");
      render();
      $("h-status").focus();
      pollTimer = setTimeout(poll, POLL_MS);
    } catch (e) {
      if (e.code === "network") showAlert(() => t("err.network"), e.code);
      else tokenError(e);
    } finally {
      button.disabled = false;
      button.textContent = t("connect");
    }
  }

  function logout() {
    stopPolling();
    sessionStorage.removeItem(TOKEN_KEY);
    status = null;
    clearAlert();
    show("login");
    $("admin-token").focus();
  }

  // ---------------------------------------------------------------- rendering

  function markStale() {
    $("live-dot").classList.add("stale");
    $("live-state").textContent = t("stale");
  }

  // A bar of booked / capacity with the figures beside it. The bar is decoration; the text
  // carries the numbers for screen readers and for the tests.
  function meter(booked, capacity) {
    const pct = capacity > 0 ? Math.min(100, (booked / capacity) * 100) : 0;
    const level = capacity > 0 && booked >= capacity ? " full" : pct >= 80 ? " high" : "";
    return el("div", { class: "meter-cell" },
      el("span", { class: "meter" + level, "aria-hidden": "true" },
        el("span", { class: "meter-bar", style: `width:${pct.toFixed(1)}%` })),
      el("span", { class: "meter-text" },
        `${number(booked)} / ${number(capacity)}`,
        el("span", { class: "meter-pct", text: ` · ${capacity > 0 ? number(pct, pct < 10 && pct > 0 ? 1 : 0) : 0}%` })));
  }

  function render() {
    if (!status) return;
    $("live-dot").classList.remove("stale");
    $("live-state").textContent = t("live");
    $("server-now").textContent = dateTime(status.now);
    $("backend").textContent = status.backend ?? "–";

    $("queue-depth").textContent = number(status.queue_depth ?? 0);
    $("pre-queue").textContent = number(status.pre_queue ?? 0);
    $("opens-at").textContent = status.opens_at ? t("opensAt", { time: calendarTime(status.opens_at) }) : "";
    $("rate-measured").textContent = rate(status.admission_rate_per_s ?? 0);
    $("rate-configured").textContent = t("rateConfigured", {
      now: rate(status.outflow_rate_per_s ?? 0), conf: rate(status.admit_per_s ?? status.outflow_rate_per_s ?? 0),
    });
    $("admitted-live").textContent = number(status.admitted_live ?? 0);
    $("admitted-total").textContent = t("admittedTotal", {
      max: number(status.admitted_live_max ?? 0), total: number(status.admitted_total ?? 0),
    });

    renderToday();
    renderControls();
    renderGraph();
    renderRefusals();
    renderLedger();
    renderLights();
    renderDays();
    renderClinics();
  }

  // Behind: commands wait and the last decision is older than this.
  const LEDGER_STALL_S = 30;

  function renderLedger() {
    const l = status.ledger || {};
    const age = l.last_decision_age_s;
    $("ledger-last").textContent = age == null ? "–" : t("secondsAgo", { s: number(age) });
    $("ledger-last-at").textContent = l.last_decision_at ? dateTime(l.last_decision_at) : "";
    $("ledger-requests").textContent = number(l.requests_waiting ?? 0);
    let sub = "";
    if (l.decides_at_once) {
      $("ledger-undecided").textContent = "0";
      sub = t("undecidedAtOnce");
    } else if (l.undecided == null) {
      $("ledger-undecided").textContent = "?";
      sub = t("undecidedUnknown", { why: l.unknown_because || "–" });
    } else {
      $("ledger-undecided").textContent = number(l.undecided);
      sub = t("undecidedParts", { n: (l.undecided_by_partition || []).length, s: number(l.measured_s_ago ?? 0) });
    }
    $("ledger-undecided-sub").textContent = sub;
    const waiting = (l.undecided ?? 0) > 0 || (l.requests_waiting ?? 0) > 0;
    const behind = waiting && (age == null || age >= LEDGER_STALL_S);
    $("ledger").dataset.health = behind ? "behind" : "ok";
    $("ledger-health").textContent = behind ? t("ledgerBehind") : t("ledgerOk");
    $("ledger-health").classList.toggle("warn", behind);
  }

  function renderLights() {
    const items = (status.lights || []).map((l) =>
      el("li", { class: "op-light", "data-method": l.method, "data-level": l.level },
        el("span", { class: "light light-" + l.level, "aria-hidden": "true" }),
        el("span", { class: "op-light-name" },
          methodName(l.method),
          l.recommended ? el("span", { class: "badge", text: t("recommended") }) : null),
        el("span", { class: "op-light-level level-" + l.level, text: t("lvl_" + l.level) }),
        el("span", { class: "op-light-wait", text: l.level === "grey" ? "–" : t("waitAbout", { t: wait(l.wait_s ?? 0) }) })));
    $("lights").replaceChildren(...items);
  }

  // Remaining / capacity of today's share, 마감 when nothing remains: what citizens are shown.
  function remainingCell(f) {
    const cell = el("td", { class: "today-cell" },
      el("span", { class: "today-num", text: t("remainingOf", { r: number(f.remaining ?? 0), c: number(f.capacity ?? 0) }) }));
    if (f.sold_out) cell.append(" ", el("span", { class: "badge badge-soldout", text: t("soldOut") }));
    return cell;
  }

  function renderToday() {
    const today = status.today || {};
    if (!today.share) {
      $("today-share").textContent = today.next_opens_at ? t("todayNone", { time: calendarTime(today.next_opens_at) }) : t("todayNoneEnded");
    } else {
      $("today-share").textContent = t("todayShare", { share: shareName(today.share), from: calendarTime(today.opens_at), to: calendarTime(today.closes_at) });
    }
    $("today-share").dataset.share = today.share || "";
    const regions = (today.regions || []).map((r) =>
      el("tr", { "data-region": r.region, "data-remaining": r.remaining, "data-sold-out": String(!!r.sold_out) },
        el("th", { scope: "row" }, el("span", { class: "row-name", text: regionName(r.region) })),
        remainingCell(r)));
    $("today-regions-body").replaceChildren(...regions);
    const clinics = (today.clinics || []).map((c) =>
      el("tr", { class: "clinic-row", "data-clinic": c.clinic_id, "data-remaining": c.remaining, "data-sold-out": String(!!c.sold_out) },
        el("th", { scope: "row" },
          el("span", { class: "row-name", text: c.name || c.clinic_id }),
          el("span", { class: "row-sub", text: [c.address, regionName(c.region)].filter((x) => x && x !== "–").join(" · ") })),
        remainingCell(c)));
    $("today-clinics-body").replaceChildren(...clinics);
    $("today-regions").hidden = regions.length === 0;
    $("today-clinics").hidden = clinics.length === 0;
  }

  function renderControls() {
    const a = status.admissions || {};
    const perMin = Math.round((a.admit_per_s ?? status.admit_per_s ?? 0) * 60);
    const src = a.admit_per_min != null && a.operator ? t("rateSetBy", { op: a.operator, at: dateTime(a.at) }) : t("rateConfiguredSrc");
    $("admissions-state").textContent = a.paused
      ? t("admissionsPaused", { rate: number(perMin) })
      : t("admissionsRunning", { rate: number(perMin), src });
    $("controls").dataset.paused = String(!!a.paused);
    const pause = $("pause-toggle");
    pause.textContent = t(a.paused ? "resume" : "pause");
    pause.classList.toggle("btn-danger", !a.paused);
    const input = $("rate-input");
    if (document.activeElement !== input && !input.value) input.placeholder = String(perMin);
    const items = (status.providers || []).map((p) => {
      const button = el("button", { type: "button", class: "btn btn-secondary btn-small", "data-method": p.method, text: t(p.outage ? "markUp" : "markDown") });
      button.addEventListener("click", () => switchProvider(button, p.method, !p.outage));
      return el("li", { "data-method": p.method, "data-outage": String(!!p.outage) },
        el("span", { class: "op-provider-name", text: methodName(p.method) }),
        el("span", { class: "op-provider-state" + (p.outage ? " down" : ""), text: t(p.outage ? "providerDown" : "providerUp") }),
        button);
    });
    $("providers").replaceChildren(...items);
  }

  // The last hour as SVG, drawn here: admissions per minute as bars, the longest queue of each
  // minute as a line, each scaled to its own maximum (written beneath).
  const SVG = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  };

  function renderGraph() {
    const samples = status.samples || [];
    const box = $("graph-svg");
    const [w, h, pad] = [600, 170, 6];
    const nodes = [svg("line", { x1: 0, y1: h - pad, x2: w, y2: h - pad, class: "graph-axis" })];
    const topA = Math.max(0, ...samples.map((s) => s.admitted || 0));
    const topQ = Math.max(0, ...samples.map((s) => s.queue_depth_max || 0));
    const [maxA, maxQ] = [Math.max(1, topA), Math.max(1, topQ)];
    const slot = w / 60;
    const x0 = w - samples.length * slot;
    const y = (v, max) => h - pad - (v / max) * (h - 2 * pad);
    samples.forEach((s, i) => {
      const top = y(s.admitted || 0, maxA);
      nodes.push(svg("rect", { x: (x0 + i * slot + 1).toFixed(1), y: top.toFixed(1), width: (slot - 2).toFixed(1),
        height: (h - pad - top).toFixed(1), class: "graph-bar", "data-minute": s.minute }));
    });
    const points = samples.map((s, i) => `${(x0 + (i + 0.5) * slot).toFixed(1)},${y(s.queue_depth_max || 0, maxQ).toFixed(1)}`);
    if (points.length > 1) nodes.push(svg("polyline", { points: points.join(" "), class: "graph-line" }));
    for (const p of points) {
      const [cx, cy] = p.split(",");
      nodes.push(svg("circle", { cx, cy, r: 3, class: "graph-dot" }));
    }
    box.replaceChildren(...nodes);
    box.dataset.samples = String(samples.length);
    $("graph-summary").textContent = samples.length
      ? t("graphSummary", { n: number(samples.length), a: number(topA), q: number(topQ) })
      : t("graphEmpty");
  }

  function renderRefusals() {
    const r = status.refusals || {};
    const by = new Map();
    for (const x of r.answered || []) by.set(x.code, { answered: x.count, recorded: 0 });
    for (const x of r.recorded || []) by.set(x.code, { answered: 0, ...by.get(x.code), recorded: x.count });
    const rows = [...by.entries()].sort((a, b) => (b[1].answered + b[1].recorded) - (a[1].answered + a[1].recorded) || a[0].localeCompare(b[0]))
      .map(([code, n]) =>
        el("tr", { "data-code": code, "data-answered": n.answered, "data-recorded": n.recorded },
          el("th", { scope: "row" },
            codeName(code) ? el("span", { class: "row-name", text: codeName(code) }) : null,
            el("code", { class: "row-sub", text: code })),
          el("td", { class: "num", text: number(n.answered) }),
          el("td", { class: "num", text: number(n.recorded) })));
    $("refusals-body").replaceChildren(...rows);
    $("refusals").hidden = rows.length === 0;
    $("refusals-empty").hidden = rows.length > 0;
  }

  function renderDays() {
    const rows = (status.booking_days || []).map((d) =>
      el("tr", { "data-share": d.share, "data-booked": d.booked, "data-capacity": d.capacity, class: d.open ? "open" : null },
        el("th", { scope: "row" },
          el("span", { class: "row-name", text: d.share === "pool" ? t("poolLabel") : t("dayLabel", { d: d.digit }) }),
          d.open ? el("span", { class: "badge", text: t("open") }) : null,
          el("span", { class: "row-sub", text: `${calendarTime(d.opens_at)} – ${calendarTime(d.closes_at)}` })),
        el("td", {}, meter(d.booked, d.capacity))));
    $("days-body").replaceChildren(...rows);
  }

  function pick(entry) {
    if (share === "all") return { booked: entry.booked ?? 0, capacity: entry.capacity ?? 0 };
    const s = (entry.shares || {})[share] || {};
    return { booked: s.booked ?? 0, capacity: s.capacity ?? 0 };
  }

  function renderShareFilter() {
    const select = $("share-filter");
    const keys = ["all", ...(status.booking_days || []).map((d) => d.share)];
    if (!keys.includes(share)) share = "all";
    const signature = keys.join(",") + "|" + lang;
    if (select.dataset.signature === signature) return;
    select.dataset.signature = signature;
    select.replaceChildren(...keys.map((k) =>
      el("option", { value: k, selected: k === share, text: k === "all" ? t("shareAll") : shareName(k) })));
  }

  function renderClinics() {
    renderShareFilter();
    const rows = [];
    for (const c of status.fill || []) {
      const total = pick(c);
      rows.push(el("tr", { class: "clinic-row", "data-clinic": c.clinic_id, "data-booked": total.booked, "data-capacity": total.capacity },
        el("th", { scope: "row" },
          el("span", { class: "row-name", text: c.name || c.clinic_id }),
          el("span", { class: "row-sub", text: [c.region ? regionName(c.region) : null, c.clinic_id].filter(Boolean).join(" · ") })),
        el("td", {}, meter(total.booked, total.capacity))));
      for (const d of c.dates || []) {
        const f = pick(d);
        rows.push(el("tr", { class: "date-row", "data-clinic": c.clinic_id, "data-date": d.date, "data-booked": f.booked, "data-capacity": f.capacity },
          el("th", { scope: "row" }, el("span", { class: "row-date", text: shortDate(d.date) })),
          el("td", {}, meter(f.booked, f.capacity))));
      }
    }
    $("clinics-body").replaceChildren(...rows);
    $("clinics-empty").hidden = rows.length > 0;
  }

  // ---------------------------------------------------------------- wiring

  function start() {
    applyText();
    $("lang-toggle").addEventListener("click", () => {
      lang = lang === "ko" ? "en" : "ko";
      localStorage.setItem(LANG_KEY, lang);
      applyText();
      render();
      if (alertShown) showAlert(alertShown.text, alertShown.code);
      if (controlSaid) sayControl(controlSaid);
    });
    $("login-form").addEventListener("submit", connect);
    $("logout").addEventListener("click", logout);
    $("share-filter").addEventListener("change", (e) => { share = e.target.value; render(); });
    $("pause-toggle").addEventListener("click", togglePause);
    $("rate-form").addEventListener("submit", setRate);
    // Back from a hidden tab: fetch at once rather than at the next tick.
    document.addEventListener("visibilitychange", () => { if (!document.hidden && token()) poll(); });
    if (token()) {
      show("status");
      poll();
    } else {
      show("login");
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
