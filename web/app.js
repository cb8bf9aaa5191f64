// yeyak: the citizen's page. Plain JS, no framework, no build step.
//
// The page only shows what the server decides. Order in the queue, admission, eligibility,
// the booking day and what remains are all answered by the HTTP API; the page never computes
// them and never trusts its own clock. The admission token exists only because the server
// issued it, and every booking call sends it back for the server to check.
//
// What the page keeps: in localStorage, the language only; in this tab's sessionStorage, the
// device id and the tokens, ticket and reservation of the flow in progress (so a refresh does not
// lose the place in the queue, and closing the tab forgets them: nothing of the person survives
// the tab, on a shared computer). A tab of its own is a device of its own: the server's device
// lock treats a second tab as a second device, as the seed's rule does for a second browser.
// "Finish" (마치기) forgets all of it at once, without closing the tab. The resident
// registration number and the birth date are never stored: the number goes to POST /v1/verify
// once and the input fields are cleared.
"use strict";

(() => {
  const STATE_KEY = "yeyak.state.v1";
  const DEVICE_KEY = "yeyak.device";
  const LANG_KEY = "yeyak.lang";
  const CONGESTION_REFRESH_MS = 5000;
  const POLL_DEFAULT_MS = 2000;
  const POLL_MIN_MS = 1000;
  const POLL_MAX_MS = 15000;
  // The stream sends something at least every 5 s: nothing for this long means it is gone.
  const STALE_MS = 12000;
  const RECONNECT_MAX_MS = 5000;
  // After the server had no stream to give (503), poll this long before trying one again.
  const POLL_INSTEAD_MS = 30000;
  const ANNOUNCE_EVERY_MS = 15000;

  // ---------------------------------------------------------------- text

  const TEXT = {
    ko: {
      skip: "본문 바로가기",
      notice: "이 누리집은 2021년 코로나19 예방접종 사전예약 시스템을 재현한 것입니다.",
      title: "코로나19 예방접종 사전예약",
      subtitle: "만 18~49세 · 본인 예약",
      stepsLabel: "진행 단계",
      stepMethod: "인증수단", stepVerify: "본인인증", stepQueue: "대기", stepChoose: "기관·날짜", stepDone: "완료",
      methodHeading: "본인인증 수단을 선택해 주세요",
      methodLead: "인증 수단별 혼잡도를 실시간으로 보여 드립니다. 초록색 수단을 고르면 더 빨리 인증할 수 있습니다.",
      purposeLegend: "무엇을 하시겠어요?",
      intentBook: "새로 예약하기",
      intentManage: "예약 조회·변경·취소",
      methodLegend: "인증 수단",
      loadingLights: "혼잡도를 불러오는 중입니다…",
      lightsFailed: "혼잡도를 불러오지 못했습니다. 잠시 후 자동으로 다시 시도합니다.",
      legendLabel: "혼잡도 표시",
      lvl_green: "원활", lvl_yellow: "지연", lvl_red: "혼잡", lvl_grey: "선택 불가",
      recommended: "추천",
      waitAbout: "인증 대기 약 {t}",
      waitNone: "지금은 사용할 수 없음",
      updatedAt: "{time} 기준",
      next: "다음", back: "이전", refresh: "새로고침",
      scheduleHeading: "예약 일정 안내",
      scheduleText: "생년월일 끝자리에 따라 예약일이 정해집니다. 8월 9일부터 18일까지 매일 20시에 그날 날짜의 끝자리와 생년월일 끝자리가 같은 분의 예약이 열리고, 다음 날 18시에 닫힙니다.",
      scheduleText2: "기간 안에 예약하지 못한 분은 8월 19일 20시부터 9월 18일 18시까지 예약·변경·취소할 수 있습니다.",
      scheduleText3: "본인만 예약할 수 있으며, 본인인증은 10분에 한 번, 먼저 인증한 기기에서만 진행됩니다.",
      verifyHeading: "본인인증",
      verifyWith: "선택한 인증 수단:",
      nameLabel: "이름",
      ridLabel: "주민등록번호",
      ridFront: "주민등록번호 앞 6자리",
      ridBack: "주민등록번호 뒤 7자리",
      ridHint: "주민등록번호는 본인 확인에만 쓰이며, 서버에서 가명 처리되어 그대로 저장되지 않습니다.",
      deviceLabel: "이 기기의 식별번호",
      verifySubmit: "인증하기",
      verifying: "인증 중…",
      nameRequired: "이름을 입력해 주세요.",
      ridFormat: "주민등록번호 13자리를 숫자로 입력해 주세요 (앞 6자리, 뒤 7자리).",
      retryIn: "{t} 후에 다시 시도할 수 있습니다.",
      queueHeading: "접속 대기 중입니다",
      queuePositionLabel: "내 앞의 대기 인원",
      queuePositionUnit: "명",
      queueEtaLabel: "예상 대기 시간",
      queueStateLabel: "상태",
      queueHint: "순서가 되면 자동으로 다음 화면으로 넘어갑니다. 새로고침해도 순서는 유지되지만, 이 창을 닫으면 순서를 잃게 되니 닫지 말고 기다려 주세요.",
      queueFair: "대기 순서와 입장은 서버가 정합니다. 화면이나 기기 시계를 바꿔도 순서는 바뀌지 않습니다.",
      queueLeave: "대기 취소",
      queueRejoin: "다시 줄 서기",
      qs_joining: "줄 서는 중", qs_waiting: "대기 중", qs_admitted: "입장", qs_expired: "만료됨",
      qs_pre: "오픈 전 대기",
      preQueueNote: "예약이 열리기 전에 오신 분들의 순서는 오픈 시각에 공개된 시드로 추첨해 정합니다. 그 뒤에 오신 분은 도착 순서대로 입장합니다.",
      queueExpired: "대기 순서가 만료되었습니다. 다시 줄을 서 주세요.",
      queueSkipped: "대기 화면의 응답이 끊겨 순서가 다음 분께 넘어갔습니다. 다시 줄을 서 주세요.",
      queueAnnounce: "내 앞에 {pos}명, 예상 대기 {eta}.",
      queueAdmitted: "입장 순서가 되었습니다.",
      queueUpdatedNow: "방금 갱신",
      queueUpdatedAgo: "{n}초 전 갱신",
      queueUpdatedMin: "{n}분 전 갱신",
      queueOffline: "서버와 연결이 끊겼습니다. 자동으로 다시 연결하는 중입니다.",
      queueOfflineHint: "위 정보는 마지막으로 받은 것입니다. 연결이 오래 끊기면 순서가 다음 분께 넘어갈 수 있으니 인터넷 연결을 확인해 주세요.",
      etaNow: "곧 입장",
      etaPaused: "입장 일시 중지",
      queuePaused: "운영자가 입장을 잠시 멈췄습니다.",
      queuePausedHint: "순서는 그대로 유지되며, 입장이 다시 시작되면 자동으로 이어집니다.",
      etaUnderMinute: "1분 이내",
      chooseHeading: "접종 기관과 날짜를 선택해 주세요",
      chooseHeadingChange: "변경할 기관과 날짜를 선택해 주세요",
      chooseLead: "남은 물량은 나의 예약일 몫 기준입니다.",
      chooseLeadPool: "남은 물량은 예약·변경 기간의 공동 물량(각 예약일에 남은 물량을 모은 것) 기준입니다.",
      regionLabel: "지역",
      allRegions: "전체 지역",
      clinicLegend: "접종 기관",
      dateLegend: "접종 날짜",
      remaining: "잔여 {n}",
      soldOut: "마감",
      noSlots: "예약할 수 있는 기관이 없습니다.",
      loadingSlots: "남은 물량을 불러오는 중입니다…",
      confirmHeading: "예약 내용을 확인해 주세요",
      confirmHeadingChange: "변경 내용을 확인해 주세요",
      confirmHint: "확정하면 선택한 기관과 날짜로 예약됩니다. 예약 변경과 취소는 8월 19일 20시부터 가능합니다.",
      confirmHintChange: "확정하면 기존 예약이 새 기관과 날짜로 바뀝니다. 새 예약이 확정되기 전까지 기존 예약은 그대로 유지됩니다.",
      confirmSubmit: "예약 확정",
      confirmSubmitChange: "변경 확정",
      sending: "처리 중…",
      doneHeading: "예약이 완료되었습니다",
      doneHeadingChange: "예약이 변경되었습니다",
      doneHint: "접종 당일 신분증을 지참하고 예약한 기관을 방문해 주세요.",
      viewReservation: "예약 조회·변경",
      print: "인쇄",
      manageHeading: "나의 예약",
      manageEmpty: "예약 내역이 없습니다.",
      cancelReservation: "예약 취소",
      changeReservation: "예약 변경",
      cancelQuestion: "예약을 취소하시겠습니까? 취소한 물량은 다른 분께 돌아갑니다.",
      cancelNo: "아니요",
      cancelYes: "예, 취소합니다",
      cancelled: "예약이 취소되었습니다.",
      loading: "불러오는 중…",
      f_reservation: "예약번호", f_reservationId: "예약 ID", f_clinic: "접종 기관", f_address: "주소", f_region: "지역", f_date: "접종 날짜", f_status: "상태",
      codeChanged: "예약번호가 바뀌었습니다: {from} → {to}. 새 예약번호를 적어 두세요.",
      codeKept: "예약번호는 그대로입니다: {code}.",
      f_method: "인증 수단",
      st_confirmed: "예약 확정",
      footer1: "yeyak — 대규모 예방접종 예약을 위한 이벤트 기반 예약 원장의 재현 프로젝트입니다.",
      footer2: "대기 순서, 입장, 예약 가능 여부는 모두 서버가 결정합니다.",
      startOver: "처음부터 다시",
      finish: "마치기",
      finished: "이 기기에 남은 예약 정보와 인증 정보를 모두 지웠습니다.",
      changeOpensAt: "예약 변경·취소는 {when}부터 할 수 있습니다 (한국 시간).",
      changeClosed: "예약 기간이 끝나 변경·취소할 수 없습니다.",
      todayLabel: "오늘의 예약 대상",
      todayDigit: "생년월일 끝자리 {d}",
      todayWindow: "{from}부터 {to}까지 (한국 시간)",
      todayPool: "예약·변경 기간: 아직 예약하지 못한 분은 누구나 예약할 수 있고, 예약한 분은 변경·취소할 수 있습니다.",
      todayNone: "지금은 예약 시간이 아닙니다.",
      todayNext: "다음 예약: 생년월일 끝자리 {d}, {from}부터 (한국 시간)",
      todayNextPool: "다음: 예약·변경 기간, {from}부터 (한국 시간)",
      todayClosed: "사전예약 기간이 끝났습니다.",
      dateHour: "{date} {h}시",
      notyetHeading: "아직 예약할 수 없습니다",
      notyetDay: "예약일은 생년월일 끝자리로 정해집니다. 아래 시각에 다시 와 주세요. 지금은 줄을 서도 예약할 수 없어 대기열에 들어가지 않습니다.",
      notyetWhen: "나의 예약 시작",
      notyetKst: "한국 시간",
      ineligibleHeading: "이번 사전예약 대상이 아닙니다",
      ineligibleText: "이번 사전예약은 {from}년부터 {to}년 사이에 태어난 분이 대상입니다.",
      closedHeading: "사전예약 기간이 끝났습니다",
      closedText: "이번 사전예약의 예약·변경 기간이 모두 끝났습니다.",
      timerLabel: "남은 예약 시간",
      timerHint: "입장 후 10분 안에 예약을 확정해 주세요.",
      expiredHeading: "예약 가능 시간이 지났습니다",
      expiredText: "입장 후 10분 안에 예약을 확정하지 않아 입장이 만료되었고, 순서는 다음 분께 넘어갔습니다. 다시 줄을 서면 예약할 수 있습니다.",
      errorCode: "오류 코드",
      sessionExpired: "본인인증이 만료되었습니다. 다시 인증해 주세요.",
      admissionGone: "입장 시간이 지났거나 이미 사용되었습니다. 다시 줄을 서 주세요.",
      langToggle: "English",
      langToggleLabel: "Switch to English",
      m_phone: "휴대폰", m_ipin: "아이핀(i-PIN)", m_joint: "공동인증서", m_financial: "금융인증서",
      m_kakao: "카카오", m_naver: "네이버", m_pass: "PASS",
      underSecond: "1초 미만", sec: "{n}초", min: "{n}분", minSec: "{m}분 {s}초", hour: "{h}시간", hourMin: "{h}시간 {m}분",
      rangeAbout: "약 {a}", rangeBetween: "약 {a} ~ {b}",
      err: {
        network: "서버에 연결할 수 없습니다. 잠시 후 다시 시도해 주세요.",
        device_locked: "다른 기기에서 먼저 본인인증을 했습니다. 그 기기에서 진행하시거나 잠시 후 다시 시도해 주세요.",
        verify_rate_limited: "본인인증은 10분에 한 번만 할 수 있습니다.",
        invalid_resident_id: "주민등록번호가 올바르지 않습니다. 다시 확인해 주세요.",
        unknown_method: "지원하지 않는 인증 수단입니다.",
        method_unavailable: "선택한 인증 수단을 지금 사용할 수 없습니다. 다른 수단을 선택해 주세요.",
        invalid_token: "인증 정보가 만료되었거나 올바르지 않습니다.",
        not_your_booking_day: "오늘은 나의 예약일이 아닙니다. 생년월일 끝자리에 맞는 예약일에 다시 와 주세요.",
        not_eligible: "이번 예약 대상(1972년~2003년 출생)이 아닙니다.",
        proxy_forbidden: "본인만 예약할 수 있습니다. 대리 예약은 할 수 없습니다.",
        sold_out: "선택한 날짜의 물량이 모두 예약되었습니다. 다른 날짜나 기관을 선택해 주세요.",
        already_reserved: "이미 예약이 있습니다. 예약 조회에서 확인·변경할 수 있습니다.",
        not_in_change_window: "예약 변경·취소는 8월 19일 20시부터 가능합니다.",
        campaign_closed: "예약 기간이 끝났습니다.",
        booking_in_progress: "앞선 예약 요청을 처리하고 있습니다. 잠시 후 다시 확인해 주세요.",
        admission_required: "대기열을 거쳐 입장한 뒤에 예약할 수 있습니다.",
        admission_expired: "입장 시간이 지났습니다. 다시 줄을 서 주세요.",
        not_verified: "본인인증이 필요합니다.",
        no_reservation: "예약 내역이 없습니다.",
        no_such_reservation: "해당 예약을 찾을 수 없습니다.",
        unknown_ticket: "대기 순서를 찾을 수 없습니다.",
        not_queued: "대기 중인 순서가 아닙니다.",
        already_queued: "이미 대기열에 있습니다.",
        invalid_name: "이름을 1~64자로 입력해 주세요.",
        invalid_device_id: "기기 식별번호가 올바르지 않습니다. 처음부터 다시 진행해 주세요.",
        invalid_clinic_id: "접종 기관을 다시 선택해 주세요.",
        invalid_date: "접종 날짜를 다시 선택해 주세요.",
        unavailable: "예약 시스템이 지금 응답하지 않습니다. 잠시 후 다시 시도해 주세요.",
        not_found: "찾을 수 없습니다.",
        unknown_clinic: "알 수 없는 접종 기관입니다.",
        no_supply: "선택한 기관·날짜에 배정된 물량이 없습니다.",
        date_out_of_range: "접종할 수 없는 날짜입니다.",
        internal: "일시적인 오류가 발생했습니다. 잠시 후 다시 시도해 주세요.",
      },
    },
    en: {
      skip: "Skip to content",
      notice: "This site re-creates the 2021 Korean COVID-19 vaccination pre-reservation service.",
      title: "COVID-19 vaccination booking",
      subtitle: "Ages 18-49 · book for yourself",
      stepsLabel: "Progress",
      stepMethod: "Method", stepVerify: "Verify", stepQueue: "Wait", stepChoose: "Clinic & date", stepDone: "Done",
      methodHeading: "Choose how to verify your identity",
      methodLead: "Live congestion for each verification method. A green method gets you through faster.",
      purposeLegend: "What would you like to do?",
      intentBook: "Book a vaccination",
      intentManage: "View, change or cancel",
      methodLegend: "Verification method",
      loadingLights: "Loading congestion…",
      lightsFailed: "Could not load congestion. Retrying automatically.",
      legendLabel: "Congestion legend",
      lvl_green: "Smooth", lvl_yellow: "Delayed", lvl_red: "Congested", lvl_grey: "Unavailable",
      recommended: "Fastest",
      waitAbout: "about {t} to verify",
      waitNone: "not available now",
      updatedAt: "as of {time}",
      next: "Continue", back: "Back", refresh: "Refresh",
      scheduleHeading: "Booking schedule",
      scheduleText: "Your booking day follows the last digit of your birth date. From 9 to 18 August, booking opens at 20:00 each day for people whose birth-date last digit matches the last digit of that day's date, and closes at 18:00 the next day.",
      scheduleText2: "If you did not book by then, you can book, change or cancel from 19 August 20:00 until 18 September 18:00.",
      scheduleText3: "Only you can book for yourself. Identity verification is allowed once per 10 minutes, and only from the first device that completes it.",
      verifyHeading: "Verify your identity",
      verifyWith: "Method:",
      nameLabel: "Name",
      ridLabel: "Resident registration number",
      ridFront: "First 6 digits of the resident registration number",
      ridBack: "Last 7 digits of the resident registration number",
      ridHint: "Used only to verify you; the server keeps a pseudonym, never the number itself.",
      deviceLabel: "This device's id",
      verifySubmit: "Verify",
      verifying: "Verifying…",
      nameRequired: "Enter your name.",
      ridFormat: "Enter all 13 digits of the number (6, then 7).",
      retryIn: "You can try again in {t}.",
      queueHeading: "You are in the waiting room",
      queuePositionLabel: "People ahead of you",
      queuePositionUnit: "",
      queueEtaLabel: "Estimated wait",
      queueStateLabel: "Status",
      queueHint: "You will move on automatically when it is your turn. Refreshing keeps your place; closing this tab loses it, so please keep it open.",
      queueFair: "The server decides the order and admission. Changing this page or your device clock does not change your place.",
      queueLeave: "Leave the queue",
      queueRejoin: "Join again",
      qs_joining: "Joining", qs_waiting: "Waiting", qs_admitted: "Admitted", qs_expired: "Expired",
      qs_pre: "Before opening",
      preQueueNote: "People who arrive before booking opens are put in order by a draw at opening, under a published seed. Everyone after that is served first come, first served.",
      queueExpired: "Your place in the queue has expired. Please join again.",
      queueSkipped: "This page stopped answering, so your place went to the next person. Please join again.",
      queueAnnounce: "{pos} people ahead of you, estimated wait {eta}.",
      queueAdmitted: "It is your turn.",
      queueUpdatedNow: "Updated just now",
      queueUpdatedAgo: "Updated {n} s ago",
      queueUpdatedMin: "Updated {n} min ago",
      queueOffline: "The connection to the server was lost. Reconnecting automatically…",
      queueOfflineHint: "What you see above is the last we heard. If the connection stays down for long, your place may pass to the next person: please check your internet connection.",
      etaNow: "any moment",
      etaPaused: "admissions paused",
      queuePaused: "The operators have paused admissions for a moment.",
      queuePausedHint: "Your place is kept, and you will move on automatically when admissions resume.",
      etaUnderMinute: "under a minute",
      chooseHeading: "Choose a clinic and a date",
      chooseHeadingChange: "Choose the new clinic and date",
      chooseLead: "Doses shown are what remains for your booking day.",
      chooseLeadPool: "Doses shown are the change window's pool: what the booking days left over.",
      regionLabel: "Region",
      allRegions: "All regions",
      clinicLegend: "Clinic",
      dateLegend: "Vaccination date",
      remaining: "{n} left",
      soldOut: "Full",
      noSlots: "No clinic has doses to book.",
      loadingSlots: "Loading what remains…",
      confirmHeading: "Check your booking",
      confirmHeadingChange: "Check your change",
      confirmHint: "Confirming books the clinic and date above. Changes and cancellations open on 19 August at 20:00.",
      confirmHintChange: "Confirming moves your reservation to the clinic and date above. Your current reservation stays until the new one is confirmed.",
      confirmSubmit: "Confirm booking",
      confirmSubmitChange: "Confirm change",
      sending: "Working…",
      doneHeading: "Your vaccination is booked",
      doneHeadingChange: "Your reservation has been changed",
      doneHint: "Please bring an identity card to the clinic on the day.",
      viewReservation: "View or change",
      print: "Print",
      manageHeading: "My reservation",
      manageEmpty: "You have no reservation.",
      cancelReservation: "Cancel reservation",
      changeReservation: "Change reservation",
      cancelQuestion: "Cancel your reservation? The dose goes back to others.",
      cancelNo: "No",
      cancelYes: "Yes, cancel it",
      cancelled: "Your reservation has been cancelled.",
      loading: "Loading…",
      f_reservation: "Booking code", f_reservationId: "Reservation ID", f_clinic: "Clinic", f_address: "Address", f_region: "Region", f_date: "Date", f_status: "Status",
      codeChanged: "Your booking code has changed: {from} → {to}. Please note the new code.",
      codeKept: "Your booking code stays the same: {code}.",
      f_method: "Method",
      st_confirmed: "Confirmed",
      footer1: "yeyak — a re-creation of an event-sourced reservation ledger for mass vaccination.",
      footer2: "Queue order, admission and availability are all decided by the server.",
      startOver: "Start over",
      finish: "Finish",
      finished: "Everything this page kept about you on this device has been forgotten.",
      changeOpensAt: "You can change or cancel your booking from {when} (Korea time).",
      changeClosed: "The booking period is over: bookings can no longer be changed or cancelled.",
      todayLabel: "Whose booking day it is",
      todayDigit: "birth dates ending in {d}",
      todayWindow: "from {from} until {to} (Korea time)",
      todayPool: "Change window: anyone who has not booked yet may book, and bookings may be changed or cancelled.",
      todayNone: "Booking is not open right now.",
      todayNext: "Next: birth dates ending in {d}, from {from} (Korea time)",
      todayNextPool: "Next: the change window, from {from} (Korea time)",
      todayClosed: "The pre-reservation is over.",
      dateHour: "{date}, {h}:00",
      notyetHeading: "You cannot book yet",
      notyetDay: "Your booking day is set by the last digit of your birth date. Please come back at the time below. Queueing now would not let you book, so you are not placed in the queue.",
      notyetWhen: "Your booking opens",
      notyetKst: "Korea time",
      ineligibleHeading: "This round is not for you",
      ineligibleText: "This pre-reservation is for people born from {from} to {to}.",
      closedHeading: "The pre-reservation is over",
      closedText: "Booking and the change window of this pre-reservation are over.",
      timerLabel: "Time left to book",
      timerHint: "Confirm your booking within 10 minutes of your admission.",
      expiredHeading: "Your time to book has run out",
      expiredText: "Your admission lasts 10 minutes and it expired before you confirmed, so your turn went to the next person. Join the queue again to book.",
      errorCode: "Error code",
      sessionExpired: "Your verification has expired. Please verify again.",
      admissionGone: "Your admission has expired or was already used. Please join the queue again.",
      langToggle: "한국어",
      langToggleLabel: "한국어 화면으로 보기",
      m_phone: "Mobile phone", m_ipin: "i-PIN", m_joint: "Joint certificate", m_financial: "Financial certificate",
      m_kakao: "Kakao", m_naver: "Naver", m_pass: "PASS",
      underSecond: "under 1 s", sec: "{n} s", min: "{n} min", minSec: "{m} min {s} s", hour: "{h} h", hourMin: "{h} h {m} min",
      rangeAbout: "about {a}", rangeBetween: "{a} to {b}",
      err: {
        network: "Cannot reach the server. Please try again shortly.",
        device_locked: "Another device verified first. Continue there, or try again later.",
        verify_rate_limited: "Identity verification is allowed once every 10 minutes.",
        invalid_resident_id: "That resident registration number is not valid.",
        unknown_method: "That verification method is not supported.",
        method_unavailable: "That method is unavailable right now. Please choose another.",
        invalid_token: "Your verification or admission is missing, expired or invalid.",
        not_your_booking_day: "Today is not your booking day.",
        not_eligible: "This round is for people born 1972 to 2003.",
        proxy_forbidden: "Only the verified person can book.",
        sold_out: "That date is fully booked. Please choose another date or clinic.",
        already_reserved: "You already have a reservation; view it to change it.",
        not_in_change_window: "Changes and cancellations open on 19 August at 20:00.",
        campaign_closed: "The booking period is over.",
        booking_in_progress: "Your previous request is still being processed.",
        admission_required: "You can book after being admitted from the queue.",
        admission_expired: "Your admission expired. Please join the queue again.",
        not_verified: "Please verify your identity first.",
        no_reservation: "You have no reservation.",
        no_such_reservation: "That reservation was not found.",
        unknown_ticket: "That place in the queue was not found.",
        not_queued: "That ticket is not waiting.",
        already_queued: "You are already in the queue.",
        invalid_name: "Enter a name of 1 to 64 characters.",
        invalid_device_id: "This device's id is not valid. Please start over.",
        invalid_clinic_id: "Please choose the clinic again.",
        invalid_date: "Please choose the date again.",
        unavailable: "The booking system is not answering right now. Please try again shortly.",
        not_found: "Not found.",
        unknown_clinic: "Unknown clinic.",
        no_supply: "No doses were registered for that clinic and date.",
        date_out_of_range: "That date is outside the vaccination period.",
        internal: "Something went wrong on our side. Please try again shortly.",
      },
    },
  };

  const METHOD_KEYS = [
    ["phone", "m_phone"], ["mobile", "m_phone"], ["ipin", "m_ipin"], ["joint", "m_joint"],
    ["financial", "m_financial"], ["kakao", "m_kakao"], ["naver", "m_naver"], ["pass", "m_pass"],
  ];
  const LEVELS = ["green", "yellow", "red", "grey"];

  let lang = localStorage.getItem(LANG_KEY) === "en" ? "en" : "ko";

  function t(key, vars) {
    const table = TEXT[lang];
    let s = key.split(".").reduce((o, k) => (o == null ? undefined : o[k]), table);
    if (s === undefined) s = key.split(".").reduce((o, k) => (o == null ? undefined : o[k]), TEXT.ko);
    if (s === undefined) return key;
    if (vars) for (const [k, v] of Object.entries(vars)) s = s.split("{" + k + "}").join(String(v));
    return s;
  }

  function methodLabel(method) {
    const norm = String(method).toLowerCase().replace(/[^a-z]/g, "");
    for (const [prefix, key] of METHOD_KEYS) if (norm.startsWith(prefix)) return t(key);
    return String(method);
  }

  function duration(totalSeconds) {
    if (totalSeconds < 1) return t("underSecond");
    const s = Math.round(totalSeconds);
    if (s < 60) return t("sec", { n: s });
    const m = Math.round(s / 60);
    if (s < 600) {
      const mm = Math.floor(s / 60), ss = s % 60;
      return ss ? t("minSec", { m: mm, s: ss }) : t("min", { n: mm });
    }
    if (m < 60) return t("min", { n: m });
    const h = Math.floor(m / 60), rm = m % 60;
    return rm ? t("hourMin", { h, m: rm }) : t("hour", { h });
  }

  // A wait in whole minutes for the queue (seconds are false precision there).
  function waitWords(sec) {
    if (sec < 60) return t("sec", { n: Math.max(10, Math.ceil(sec / 10) * 10) });
    const m = Math.round(sec / 60);
    if (m < 60) return t("min", { n: m });
    const h = Math.floor(m / 60), rm = m % 60;
    return rm ? t("hourMin", { h, m: rm }) : t("hour", { h });
  }

  // The server gives eta_s and, when it has one, a range; the page only formats it.
  function etaRange(q) {
    const bounds = etaBounds(q);
    if (!bounds) return "–";
    const [lo, hi] = bounds;
    if (hi <= 5) return t("etaNow");
    const a = waitWords(lo), b = waitWords(hi);
    return a === b ? t("rangeAbout", { a }) : t("rangeBetween", { a, b });
  }

  // [low, high] seconds of the server's ETA, or null when it gave none.
  function etaBounds(q) {
    const pick = (...names) => {
      for (const n of names) if (typeof q[n] === "number" && isFinite(q[n])) return q[n];
      return undefined;
    };
    let lo = pick("eta_low_s", "eta_min_s", "eta_from_s", "eta_lower_s");
    let hi = pick("eta_high_s", "eta_max_s", "eta_to_s", "eta_upper_s");
    if (Array.isArray(q.eta_range_s) && q.eta_range_s.length === 2) [lo, hi] = q.eta_range_s;
    if (q.eta && typeof q.eta === "object") {
      lo = lo ?? q.eta.low_s ?? q.eta.min_s;
      hi = hi ?? q.eta.high_s ?? q.eta.max_s;
    }
    const mid = pick("eta_s");
    if (lo === undefined) lo = mid;
    if (hi === undefined) hi = mid;
    return lo === undefined ? null : [lo, hi];
  }

  function formatDate(iso) {
    if (!iso || !/^\d{4}-\d{2}-\d{2}/.test(iso)) return String(iso ?? "–");
    const d = new Date(iso.slice(0, 10) + "T00:00:00Z");
    return new Intl.DateTimeFormat(lang === "ko" ? "ko-KR" : "en-GB", {
      year: "numeric", month: "long", day: "numeric", weekday: "short", timeZone: "UTC",
    }).format(d);
  }

  // [day, weekday] for a date chip, e.g. ["8월 30일", "월"].
  function formatShortDate(iso) {
    const d = new Date(String(iso).slice(0, 10) + "T00:00:00Z");
    if (isNaN(d)) return [String(iso), ""];
    const locale = lang === "ko" ? "ko-KR" : "en-GB";
    return [
      new Intl.DateTimeFormat(locale, { month: "short", day: "numeric", timeZone: "UTC" }).format(d),
      new Intl.DateTimeFormat(locale, { weekday: "short", timeZone: "UTC" }).format(d),
    ];
  }

  // An instant the server gave in the campaign's local time (Korea time, "+09:00"): shown as the
  // date and hour written in it, whatever this computer's time zone or clock.
  function formatLocal(iso) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(String(iso || ""));
    if (!m) return String(iso ?? "–");
    const day = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
    const date = new Intl.DateTimeFormat(lang === "ko" ? "ko-KR" : "en-GB", {
      month: "long", day: "numeric", weekday: "short", timeZone: "UTC",
    }).format(day);
    if (m[5] !== "00") return `${date} ${m[4]}:${m[5]}`;
    return t("dateHour", { date, h: Number(m[4]) });
  }

  // The region's name in the page's language (web/regions.js).
  function regionName(region) {
    if (region == null || region === "") return region;
    return window.yeyakRegionName(region, lang);
  }

  // A booking code as it is read out: two groups of five.
  const formatCode = (code) => String(code).length === 10 ? `${code.slice(0, 5)}-${code.slice(5)}` : String(code);

  const number = (n) => new Intl.NumberFormat(lang === "ko" ? "ko-KR" : "en-GB").format(n);

  // ---------------------------------------------------------------- state

  function deviceId() {
    let id = sessionStorage.getItem(DEVICE_KEY);
    if (!id) {
      id = crypto.randomUUID ? crypto.randomUUID() : Array.from(crypto.getRandomValues(new Uint8Array(16)),
        (b) => b.toString(16).padStart(2, "0")).join("");
      sessionStorage.setItem(DEVICE_KEY, id);
    }
    return id;
  }

  const blank = () => ({
    intent: "book",        // what the person chose on the first screen: book | manage
    goal: null,            // what the flow does after admission: book | view | change | cancel
    method: null,
    methodChosen: false,   // the person picked a method (otherwise the recommendation is selected)
    session: null,         // { token, expires_at } from POST /v1/verify
    ticket: null,          // from POST /v1/queue
    firstPosition: null,
    admission: null,       // admission_token from GET /v1/queue/{ticket}; only the server issues it
    admissionUsed: false,  // a booking or change went through with it (it is single-use)
    admissionDeadline: null, // this computer's ms when the admission runs out (from the server's expires_in_s)
    booking: null,         // from POST /v1/verify: may this person book now, else when or why not
    reservation: null,     // the last reservation the server returned
    choice: null,          // { clinic_id, date }
    view: "method",
  });

  let state = load();

  function load() {
    // Older versions kept the flow and the device id in localStorage, where the next person at
    // the computer would find them: gone.
    localStorage.removeItem(STATE_KEY);
    localStorage.removeItem(DEVICE_KEY);
    try {
      const s = JSON.parse(sessionStorage.getItem(STATE_KEY) || "null");
      return s && typeof s === "object" ? { ...blank(), ...s } : blank();
    } catch {
      return blank();
    }
  }

  function save() {
    sessionStorage.setItem(STATE_KEY, JSON.stringify(state));
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || `HTTP ${status}`);
      this.status = status;
      this.code = (body && body.error) || (status === 0 ? "network" : status >= 500 ? "internal" : `http_${status}`);
      this.apiMessage = body && body.message;
      this.retryAfter = body && typeof body.retry_after_s === "number" ? body.retry_after_s : null;
      this.reason = (body && body.reason) || null;
      this.body = body || {};
    }
  }

  async function api(method, path, { token, body, key } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (key) headers["Idempotency-Key"] = key;
    if (token) {
      headers.Authorization = "Bearer " + token;
      // The server checks it against the device the token was issued to.
      headers["X-Device-Id"] = deviceId();
    }
    let res;
    try {
      res = await fetch(path, {
        method, headers, cache: "no-store",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, null);
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = { message: text.slice(0, 300) }; }
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  // The Idempotency-Key of a request whose answer was lost (no answer, or 503): the next press
  // asks again with the same key, and the server answers with the first decision, if there was
  // one (a verification is then not refused as "once per 10 minutes", a booking not as "already
  // reserved"). Any other answer settles the request; the next press is a new one.
  const lostKeys = {};
  function attemptKey(what) {
    if (!lostKeys[what]) {
      lostKeys[what] = crypto.randomUUID
        ? crypto.randomUUID()
        : Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
    }
    return lostKeys[what];
  }
  function settleKey(what, error) {
    const lost = error instanceof ApiError && (error.status === 0 || error.status === 503);
    if (!lost) delete lostKeys[what];
  }

  // Calls `fn(token)` with each usable token in turn while the server answers 401: which token
  // a read or a cancel accepts is the server's business, the page just offers what it holds.
  async function withTokens(tokens, fn) {
    const usable = tokens.filter(Boolean);
    let last = new ApiError(401, { error: "invalid_token" });
    for (const token of usable) {
      try {
        return await fn(token);
      } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 401) throw e;
        last = e;
      }
    }
    throw last;
  }

  const freshAdmission = () => (state.admission && !state.admissionUsed ? state.admission : null);
  const sessionToken = () => (state.session ? state.session.token : null);

  // ---------------------------------------------------------------- DOM helpers

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === false || v == null) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c != null) node.append(c);
    return node;
  };

  function applyText() {
    document.documentElement.lang = lang;
    document.title = t("title");
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll("[data-i18n-attr]")) {
      for (const pair of node.dataset.i18nAttr.split(";")) {
        const [attr, key] = pair.split(":");
        node.setAttribute(attr, t(key));
      }
    }
    const toggle = $("lang-toggle");
    toggle.textContent = t("langToggle");
    toggle.setAttribute("aria-label", t("langToggleLabel"));
    toggle.setAttribute("lang", lang === "ko" ? "en" : "ko");
  }

  // The alert shown, to be written again in the other language when the person switches.
  let alertShown = null;

  // `text` gives the message in the page's language at the time (a function, so that the
  // language toggle can write it again).
  function showAlert(text, { code, info } = {}) {
    alertShown = { text, code, info };
    const box = $("alert");
    box.replaceChildren(el("strong", { text: text() }));
    if (code) box.append(el("span", { class: "code", text: `${t("errorCode")}: ${code}` }));
    box.classList.toggle("alert-info", !!info);
    box.setAttribute("role", info ? "status" : "alert");
    box.hidden = false;
  }

  function clearAlert() {
    alertShown = null;
    $("alert").hidden = true;
    $("alert").replaceChildren();
  }

  // The text shown for an API error: in Korean our own words for a known code; in English the
  // server's message when it sent one. The code is always shown for support calls.
  function errorText(e) {
    const known = TEXT[lang].err[e.code];
    if (lang === "en" && e.apiMessage) return e.apiMessage;
    return known || e.apiMessage || t("err.internal");
  }

  function showError(e) {
    if (!(e instanceof ApiError)) {
      console.error(e);
      showAlert(() => t("err.internal"));
      return;
    }
    showAlert(() => errorText(e), { code: e.reason ? `${e.code} (${e.reason})` : e.code });
  }

  function busy(button, on, label) {
    if (on) {
      button.dataset.label = button.textContent;
      button.textContent = label || t("sending");
      button.setAttribute("aria-busy", "true");
      button.disabled = true;
    } else {
      if (button.dataset.label) button.textContent = button.dataset.label;
      button.removeAttribute("aria-busy");
      button.disabled = false;
    }
  }

  // ---------------------------------------------------------------- views

  const STEP_OF = {
    method: "method", verify: "verify", notyet: "verify", queue: "queue", expired: "queue",
    choose: "choose", confirm: "choose", done: "done", manage: "done",
  };
  const STEP_ORDER = ["method", "verify", "queue", "choose", "done"];
  const RENDER = {};

  function show(view, { focus = true, keepAlert = false } = {}) {
    if (!keepAlert) clearAlert();
    state.view = view;
    save();
    for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== "view-" + view;
    const current = STEP_OF[view];
    const at = STEP_ORDER.indexOf(current);
    for (const li of document.querySelectorAll("#steps li")) {
      const i = STEP_ORDER.indexOf(li.dataset.step);
      li.classList.toggle("done", i < at);
      if (i === at) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    }
    if (view !== "method") stopCongestion();
    if (view !== "queue") stopPolling();
    if (RENDER[view]) RENDER[view]();
    renderTimer();
    if (focus) {
      const h = document.querySelector("#view-" + view + " h1");
      if (h) { h.setAttribute("tabindex", "-1"); h.focus({ preventScroll: true }); window.scrollTo(0, 0); }
    }
  }

  // ---------------------------------------------------------------- 1. method choice and lights

  let congestion = [];
  let congestionTimer = null;
  let congestionAt = null;

  function recommended(list) {
    const rank = { green: 0, yellow: 1, red: 2 };
    const usable = list.filter((c) => c.level in rank);
    usable.sort((a, b) => (a.wait_s ?? Infinity) - (b.wait_s ?? Infinity) || rank[a.level] - rank[b.level]);
    return usable.length ? usable[0].method : null;
  }

  async function refreshCongestion() {
    try {
      const data = await api("GET", "/v1/congestion");
      congestion = (Array.isArray(data) ? data : data.methods || []).map((c) => ({
        method: String(c.method),
        level: LEVELS.includes(c.level) ? c.level : "grey",
        wait_s: typeof c.wait_s === "number" ? c.wait_s : null,
        recommended: c.recommended === true,
      }));
      congestionAt = new Date();
      renderMethods();
    } catch (e) {
      if (!congestion.length) {
        $("method-list").replaceChildren(el("p", { class: "muted", text: t("lightsFailed") }));
      }
    } finally {
      clearTimeout(congestionTimer);
      if (state.view === "method") congestionTimer = setTimeout(refreshCongestion, CONGESTION_REFRESH_MS);
    }
  }

  function stopCongestion() {
    clearTimeout(congestionTimer);
    congestionTimer = null;
  }

  function renderMethods() {
    const list = $("method-list");
    if (!congestion.length) {
      list.replaceChildren(el("p", { class: "muted", text: t("loadingLights") }));
      return;
    }
    list.setAttribute("aria-busy", "false");
    // The server names the method it recommends; only an older answer without it is ranked here.
    const named = congestion.find((c) => c.recommended && c.level !== "grey");
    const best = named ? named.method : recommended(congestion);
    const chosen = congestion.find((c) => c.method === state.method);
    if (!state.methodChosen || !chosen || chosen.level === "grey") {
      state.method = best;
      state.methodChosen = false;
    }
    const hadFocus = document.activeElement && document.activeElement.name === "method"
      ? document.activeElement.value : null;
    const cards = congestion.map((c) => {
      const unavailable = c.level === "grey";
      const input = el("input", {
        type: "radio", name: "method", value: c.method, disabled: unavailable,
        checked: c.method === state.method,
        "aria-describedby": "lvl-" + c.method,
      });
      input.addEventListener("change", () => {
        state.method = c.method;
        state.methodChosen = true;
        save();
        $("method-next").disabled = false;
      });
      const waitText = unavailable || c.wait_s == null ? t("waitNone") : t("waitAbout", { t: duration(c.wait_s) });
      const card = el("label", { class: "method" + (unavailable ? " unavailable" : ""), "data-method": c.method, "data-level": c.level, "data-wait-s": c.wait_s ?? "" },
        input,
        el("span", { class: "light light-" + c.level, "aria-hidden": "true" }),
        el("span", { class: "method-name" },
          methodLabel(c.method),
          c.method === best ? el("span", { class: "badge", text: t("recommended") }) : null,
          el("span", { class: "method-meta", text: waitText })),
        el("span", { class: "method-level level-" + c.level, id: "lvl-" + c.method, text: t("lvl_" + c.level) }));
      return card;
    });
    list.replaceChildren(...cards);
    if (hadFocus) {
      const again = list.querySelector(`input[value="${CSS.escape(hadFocus)}"]`);
      if (again) again.focus();
    }
    $("method-next").disabled = !state.method;
    if (congestionAt) {
      const time = congestionAt.toLocaleTimeString(lang === "ko" ? "ko-KR" : "en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
      $("congestion-updated").textContent = t("updatedAt", { time });
    }
    save();
  }

  RENDER.method = () => {
    for (const r of document.querySelectorAll('input[name="intent"]')) r.checked = r.value === state.intent;
    renderMethods();
    refreshCongestion();
    refreshSchedule();
  };

  // Whose booking day it is, as GET /v1/schedule says (the campaign's calendar on the server).
  let schedule = null;

  async function refreshSchedule() {
    try {
      schedule = await api("GET", "/v1/schedule");
    } catch {
      schedule = null;
    }
    renderToday();
  }

  // "생년월일 끝자리 {d}" with the digit in a <strong>.
  function withDigit(key, digit) {
    const [before, after] = t(key).split("{d}");
    return [before, el("strong", { id: "today-digit", text: String(digit) }), after || ""];
  }

  function renderToday() {
    const box = $("today");
    box.hidden = !schedule;
    if (!schedule) return;
    const open = schedule.open, next = schedule.next;
    const who = $("today-who"), when = $("today-when"), later = $("today-next");
    if (open && open.kind === "booking_day") who.replaceChildren(...withDigit("todayDigit", open.digit));
    else who.textContent = t(open ? "todayPool" : next ? "todayNone" : "todayClosed");
    when.textContent = open ? t("todayWindow", { from: formatLocal(open.opens_at), to: formatLocal(open.closes_at) }) : "";
    when.hidden = !open;
    later.hidden = !!open || !next;
    if (!open && next) {
      later.textContent = next.kind === "booking_day"
        ? t("todayNext", { d: next.digit, from: formatLocal(next.opens_at) })
        : t("todayNextPool", { from: formatLocal(next.opens_at) });
    }
  }

  // ---------------------------------------------------------------- 2. verification

  let countdownTimer = null;

  function startCountdown(seconds) {
    clearInterval(countdownTimer);
    const line = $("verify-countdown");
    const submit = $("verify-submit");
    const until = Date.now() + seconds * 1000; // only for the countdown display; the server decides
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0) {
        clearInterval(countdownTimer);
        line.hidden = true;
        submit.disabled = false;
        return;
      }
      line.hidden = false;
      line.textContent = t("retryIn", { t: duration(left) });
      submit.disabled = true;
    };
    tick();
    countdownTimer = setInterval(tick, 1000);
  }

  function fieldError(inputs, errNode, message) {
    for (const i of inputs) {
      if (message) i.setAttribute("aria-invalid", "true");
      else i.removeAttribute("aria-invalid");
    }
    errNode.hidden = !message;
    errNode.textContent = message || "";
  }

  RENDER.verify = () => {
    $("verify-method-name").textContent = state.method ? methodLabel(state.method) : "–";
    $("device-id").textContent = deviceId();
  };

  async function submitVerify(event) {
    event.preventDefault();
    clearAlert();
    const name = $("name").value.trim();
    const front = $("rid-front").value.trim();
    const back = $("rid-back").value.trim();
    let ok = true;
    fieldError([$("name")], $("name-err"), name ? null : t("nameRequired"));
    if (!name) ok = false;
    const ridOk = /^\d{6}$/.test(front) && /^\d{7}$/.test(back);
    fieldError([$("rid-front"), $("rid-back")], $("rid-err"), ridOk ? null : t("ridFormat"));
    if (!ridOk) ok = false;
    if (!ok) {
      (name ? (/^\d{6}$/.test(front) ? $("rid-back") : $("rid-front")) : $("name")).focus();
      return;
    }
    const submit = $("verify-submit");
    busy(submit, true, t("verifying"));
    try {
      const res = await api("POST", "/v1/verify", {
        body: { method: state.method, resident_id: `${front}-${back}`, name, device_id: deviceId() },
        key: attemptKey("verify"),
      });
      settleKey("verify");
      $("rid-front").value = "";
      $("rid-back").value = "";
      state.session = { token: res.session_token, expires_at: res.expires_at };
      // A verification asked for in the middle of a flow (an expired session) resumes that flow.
      if (!state.goal) state.goal = state.intent === "manage" ? "view" : "book";
      state.admission = null;
      state.admissionUsed = false;
      state.booking = res.booking || null;
      save();
      busy(submit, false);
      // Who may not book now is told when (or why not) instead of queueing for nothing.
      if (state.goal === "book" && state.booking && state.booking.open === false) return show("notyet");
      await proceed();
    } catch (e) {
      busy(submit, false);
      settleKey("verify", e);
      if (!(e instanceof ApiError)) return showError(e);
      if (e.code === "invalid_resident_id") {
        fieldError([$("rid-front"), $("rid-back")], $("rid-err"), errorText(e));
        $("rid-front").focus();
      }
      showError(e);
      if (e.retryAfter) startCountdown(e.retryAfter);
      if (e.code === "method_unavailable" || e.code === "unknown_method") {
        state.methodChosen = false;
        show("method", { keepAlert: true });
      }
    }
  }

  // ---------------------------------------------------------------- 3. waiting room

  let pollTimer = null;
  let pollDelayMs = POLL_DEFAULT_MS;
  let lastAnnounce = 0;
  let lastQueue = null;

  async function enqueue() {
    if (!sessionToken()) return reverify();
    try {
      let res;
      try {
        res = await api("POST", "/v1/queue", { token: sessionToken() });
      } catch (e) {
        // One live ticket per person: a second tab or a retry gets the ticket it already has.
        if (!(e instanceof ApiError) || e.code !== "already_queued") throw e;
        res = { ...e.body, ticket: e.body.ticket ?? state.ticket ?? "me" };
      }
      state.ticket = res.ticket == null ? "me" : String(res.ticket);
      state.firstPosition = typeof res.position === "number" ? res.position : null;
      state.admission = null;
      state.admissionUsed = false;
      lastQueue = { state: "waiting", ...res };
      save();
      show("queue");
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return reverify();
      if (e instanceof ApiError && NOT_NOW.includes(e.code)) {
        const known = state.booking && state.booking.reason === e.code ? state.booking : {};
        state.booking = { ...known, open: false, reason: e.code };
        save();
        return show("notyet");
      }
      showError(e);
    }
  }

  // The server's refusals of a place in the queue to someone who may not book then.
  const NOT_NOW = ["not_your_booking_day", "not_eligible", "campaign_closed"];

  RENDER.notyet = () => {
    const b = state.booking || {};
    const reason = b.reason || "not_your_booking_day";
    const age = b.age_group || {};
    const [heading, text] = {
      not_eligible: ["ineligibleHeading", t("ineligibleText", { from: age.born_from_year ?? "–", to: age.born_to_year ?? "–" })],
      campaign_closed: ["closedHeading", t("closedText")],
    }[reason] || ["notyetHeading", t("notyetDay")];
    $("h-notyet").textContent = t(heading);
    $("notyet-text").textContent = text;
    $("notyet-when-box").hidden = !b.opens_at;
    $("notyet-when").textContent = b.opens_at ? `${formatLocal(b.opens_at)} (${t("notyetKst")})` : "";
    $("view-notyet").dataset.reason = reason;
  };

  // ---------------------------------------------------------------- the admission's 10 minutes

  let timerTick = null;

  // Seconds left of the live admission, by this computer's clock from the server's
  // expires_in_s (the page never compares its clock with the server's dates).
  function admissionLeftS() {
    if (!freshAdmission() || typeof state.admissionDeadline !== "number") return null;
    return Math.max(0, Math.ceil((state.admissionDeadline - Date.now()) / 1000));
  }

  function renderTimer() {
    const box = $("admission-timer");
    const left = state.view === "choose" || state.view === "confirm" ? admissionLeftS() : null;
    box.hidden = left === null;
    if (left === null || left <= 0) {
      clearInterval(timerTick);
      timerTick = null;
      // After the view in hand is shown (this runs inside show()).
      if (left === 0) setTimeout(admissionExpired, 0);
      return;
    }
    $("admission-left").textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    box.classList.toggle("urgent", left <= 60);
    if (!timerTick) timerTick = setInterval(renderTimer, 500);
  }

  // The admission ran out: say so, and offer the queue again (one click).
  function admissionExpired() {
    state.admission = null;
    state.admissionDeadline = null;
    save();
    show("expired");
  }

  function reverify() {
    state.session = null;
    state.ticket = null;
    save();
    show("verify", { keepAlert: false });
    showAlert(() => t("sessionExpired"), { info: true });
  }

  function renderQueue() {
    const q = lastQueue || { state: "joining" };
    const pre = q.pre_queue === true || /pre/.test(String(q.state));
    const st = pre ? "pre" : ["waiting", "admitted", "expired"].includes(q.state) ? q.state : "joining";
    $("queue-pre").hidden = !pre;
    $("queue-state").textContent = t("qs_" + st);
    const pos = typeof q.position === "number" ? q.position : null;
    $("queue-position").textContent = pos == null ? "–" : number(pos);
    // Paused by the operators: the server gives no ETA, and the page says why.
    const paused = st === "waiting" && q.admissions_paused === true;
    $("queue-paused").hidden = !paused;
    const eta = $("queue-eta");
    eta.textContent = st === "admitted" ? t("qs_admitted") : st === "expired" ? "–" : paused ? t("etaPaused") : etaRange(q);
    // The server's seconds behind the words, for whoever checks the page against the real wait.
    const bounds = st === "waiting" || st === "pre" ? etaBounds(q) : null;
    eta.dataset.rangeS = bounds ? bounds.join("-") : "";
    const first = state.firstPosition;
    const done = pos == null || !first ? 0 : Math.max(0, Math.min(1, (first - pos) / Math.max(first, 1)));
    $("queue-bar").style.width = (st === "admitted" ? 100 : Math.round(done * 100)) + "%";
    $("queue-leave").hidden = st === "expired" || st === "admitted";
    $("queue-rejoin").hidden = st !== "expired";
    const now = Date.now();
    if ((st === "waiting" || st === "pre") && pos != null && now - lastAnnounce > ANNOUNCE_EVERY_MS) {
      lastAnnounce = now;
      $("queue-live").textContent = t("queueAnnounce", { pos: number(pos), eta: eta.textContent });
    }
    renderFreshness();
  }

  // The waiting room is pushed by the server (GET /v1/queue/{ticket}/events, Server-Sent Events
  // read with fetch, so that the session token travels in a header and never in a URL); when
  // the server holds no more streams (503) or the browser cannot read one, the page polls
  // GET /v1/queue/{ticket} as often as the server's poll_after_ms says, and tries the stream
  // again later. Either way the page says when it last heard from the server, and a banner
  // says when it hears nothing (the stream sends an event or a keep-alive at least every 5 s):
  // it reconnects by itself.
  const live = {
    controller: null,  // the open stream's AbortController
    retryTimer: null,
    clockTimer: null,
    retries: 0,
    heardAt: 0,        // anything from the server: an event, a keep-alive, an answer
    updatedAt: 0,      // the last ticket
    pollUntil: 0,      // polling instead of the stream until then
    down: false,
  };

  function stopLive() {
    const ctrl = live.controller;
    live.controller = null;
    if (ctrl) ctrl.abort();
    clearTimeout(pollTimer);
    pollTimer = null;
    clearTimeout(live.retryTimer);
    live.retryTimer = null;
    clearInterval(live.clockTimer);
    live.clockTimer = null;
    setDown(false);
  }
  const stopPolling = stopLive;

  function startLive() {
    stopLive();
    live.retries = 0;
    live.heardAt = Date.now();
    live.updatedAt = 0;
    live.clockTimer = setInterval(watchdog, 1000);
    connect();
  }

  function connect() {
    if (state.view !== "queue" || !state.ticket) return;
    const canStream = typeof ReadableStream === "function" && typeof AbortController === "function";
    if (!canStream || Date.now() < live.pollUntil) return pollQueue();
    openStream();
  }

  function heard() {
    live.heardAt = Date.now();
    live.retries = 0;
    setDown(false);
  }

  function setDown(down) {
    live.down = down;
    $("queue-offline").hidden = !down;
    renderFreshness();
  }

  // "Updated n s ago", from the last ticket the server sent.
  function renderFreshness() {
    const node = $("queue-updated");
    if (!live.updatedAt) { node.textContent = ""; return; }
    const s = Math.max(0, Math.floor((Date.now() - live.updatedAt) / 1000));
    node.textContent = s < 2 ? t("queueUpdatedNow") : s < 120 ? t("queueUpdatedAgo", { n: s }) : t("queueUpdatedMin", { n: Math.floor(s / 60) });
    node.classList.toggle("stale", live.down);
  }

  function watchdog() {
    if (state.view !== "queue") return stopLive();
    renderFreshness();
    const quietMs = Date.now() - live.heardAt;
    const polling = !live.controller;
    if (!live.down && quietMs > STALE_MS + (polling ? pollDelayMs : 0)) {
      // Nothing for too long: the connection is gone although the browser has not said so.
      setDown(true);
      if (live.controller) lost(live.controller);
    }
  }

  // The stream (or a poll) failed: say so, and try again soon (1, 2, 4, 5, 5 ... s).
  function lost(ctrl) {
    if (ctrl) {
      if (live.controller !== ctrl) return; // stopped on purpose
      live.controller = null;
      ctrl.abort();
    }
    if (state.view !== "queue") return;
    setDown(true);
    clearTimeout(live.retryTimer);
    const delay = Math.min(RECONNECT_MAX_MS, 1000 * 2 ** live.retries);
    live.retries += 1;
    live.retryTimer = setTimeout(connect, delay);
  }

  function parseEvent(block) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (!data.length) return null; // a keep-alive comment
    try { return { name, data: JSON.parse(data.join("\n")) }; } catch { return null; }
  }

  async function openStream() {
    const ctrl = new AbortController();
    live.controller = ctrl;
    const headers = { Accept: "text/event-stream", Authorization: "Bearer " + sessionToken(), "X-Device-Id": deviceId() };
    let res;
    try {
      res = await fetch("/v1/queue/" + encodeURIComponent(state.ticket) + "/events", { headers, cache: "no-store", signal: ctrl.signal });
    } catch {
      return lost(ctrl);
    }
    if (live.controller !== ctrl) return;
    if (!res.ok || !res.body) {
      let body = null;
      try { body = await res.json(); } catch { /* no JSON body */ }
      live.controller = null;
      if (res.ok || res.status === 503 || res.status === 404 && !(body && body.error === "unknown_ticket")) {
        // No stream to be had now: poll for a while, then try it again.
        live.pollUntil = Date.now() + POLL_INSTEAD_MS;
        return pollQueue();
      }
      return ticketFailed(new ApiError(res.status, body));
    }
    heard();
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (live.controller !== ctrl) return;
        heard();
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let at;
        while ((at = buffer.indexOf("\n\n")) >= 0) {
          const event = parseEvent(buffer.slice(0, at));
          buffer = buffer.slice(at + 2);
          if (!event) continue;
          if (event.name === "error") {
            live.controller = null;
            ctrl.abort();
            const status = { unknown_ticket: 404, invalid_token: 401 }[event.data.error] || 503;
            return ticketFailed(new ApiError(status, event.data));
          }
          if (event.name === "ticket" && !onTicket(event.data)) {
            live.controller = null;
            ctrl.abort();
            return;
          }
        }
      }
    } catch {
      return lost(ctrl);
    }
    // The server ended the stream at its bound: connect again at once.
    if (live.controller === ctrl) {
      live.controller = null;
      connect();
    }
  }

  // A ticket from the server (pushed or polled); false once there is nothing more to wait for.
  function onTicket(q) {
    live.updatedAt = Date.now();
    if (q.ticket != null && state.ticket === "me") state.ticket = String(q.ticket);
    lastQueue = q;
    if (typeof q.poll_after_ms === "number") pollDelayMs = Math.max(POLL_MIN_MS, Math.min(POLL_MAX_MS, q.poll_after_ms));
    if (state.firstPosition == null && typeof q.position === "number") state.firstPosition = q.position;
    if (q.state === "admitted" && q.admission_token) {
      state.admission = q.admission_token;
      state.admissionUsed = false;
      state.admissionDeadline = typeof q.expires_in_s === "number" ? Date.now() + q.expires_in_s * 1000 : null;
      state.ticket = null;
      save();
      renderQueue();
      $("queue-live").textContent = t("queueAdmitted");
      stopLive();
      afterAdmission();
      return false;
    }
    if (q.state === "expired") {
      stopLive();
      renderQueue();
      showAlert(() => t(q.reason === "skipped" ? "queueSkipped" : "queueExpired"), { code: q.reason });
      return false;
    }
    renderQueue();
    return true;
  }

  // What a refused look at the ticket means for the person.
  function ticketFailed(e) {
    if (e instanceof ApiError && e.status === 401) { stopLive(); return reverify(); }
    if (e instanceof ApiError && (e.status === 404 || e.status === 410)) {
      stopLive();
      lastQueue = { state: "expired" };
      renderQueue();
      showAlert(() => t("queueExpired"), { code: e.code });
      return;
    }
    if (e instanceof ApiError && e.status !== 0 && e.status < 500) { stopLive(); return showError(e); }
    lost(null);
  }

  async function pollQueue() {
    clearTimeout(pollTimer);
    pollTimer = null;
    if (!state.ticket || state.view !== "queue") return;
    try {
      // The owner's session makes the poll a heartbeat and is what the admission token is
      // handed to; the ticket "me" is the person's place in the pre-queue before opening.
      const q = await api("GET", "/v1/queue/" + encodeURIComponent(state.ticket), { token: sessionToken() });
      if (state.view !== "queue") return;
      heard();
      if (!onTicket(q)) return;
    } catch (e) {
      return ticketFailed(e);
    }
    if (state.view !== "queue") return;
    if (Date.now() >= live.pollUntil) return connect();
    pollTimer = setTimeout(pollQueue, pollDelayMs);
  }

  window.addEventListener("offline", () => { if (state.view === "queue" && live.clockTimer) lost(live.controller); });
  window.addEventListener("online", () => {
    if (state.view !== "queue" || !live.down) return;
    clearTimeout(live.retryTimer);
    live.retries = 0;
    connect();
  });

  RENDER.queue = () => {
    renderQueue();
    startLive();
  };

  async function leaveQueue() {
    stopPolling();
    const ticket = state.ticket;
    state.ticket = null;
    save();
    if (ticket) {
      try {
        await api("DELETE", "/v1/queue/" + encodeURIComponent(ticket), { token: sessionToken() });
      } catch {
        // Leaving is a courtesy to the people behind; a ticket left alone is skipped anyway.
      }
    }
    show("method");
  }

  // ---------------------------------------------------------------- after admission: what the goal needs

  async function proceed() {
    switch (state.goal) {
      case "view": return loadReservation();
      case "cancel": return cancelReservation();
      case "change":
      case "book":
      default:
        return freshAdmission() ? show("choose") : enqueue();
    }
  }

  function afterAdmission() {
    return proceed();
  }

  // ---------------------------------------------------------------- 4. clinic and date

  let slots = [];     // rows { clinic_id, name, region, address, date, remaining }
  let slotsShare = null; // which share the server counted them from: "day<n>" or "pool"
  let clinicNames = {};

  function normalizeSlots(data) {
    const rows = [];
    const push = (c, d) => {
      const clinic_id = String(c.clinic_id ?? c.clinic ?? c.id ?? "");
      const name = c.name ?? c.clinic_name ?? clinic_id;
      const region = c.region ?? "";
      const address = c.address ?? null;
      const remaining = d.remaining ?? d.available ?? d.doses_remaining ?? d.left ?? 0;
      if (clinic_id && d.date) rows.push({ clinic_id, name, region, address, date: String(d.date).slice(0, 10), remaining: Number(remaining) || 0 });
    };
    const list = Array.isArray(data) ? data : (data && (data.clinics || data.slots)) || [];
    for (const item of list) {
      const dates = item.dates || item.slots;
      if (Array.isArray(dates)) for (const d of dates) push(item, typeof d === "string" ? { date: d, remaining: 1 } : d);
      else push(item, item);
    }
    for (const r of rows) clinicNames[r.clinic_id] = { name: r.name, region: r.region, address: r.address };
    return rows;
  }

  async function loadSlots() {
    const list = $("clinic-list");
    list.setAttribute("aria-busy", "true");
    list.replaceChildren(el("p", { class: "muted", text: t("loadingSlots") }));
    try {
      const data = await withTokens([freshAdmission()], (token) => api("GET", "/v1/slots", { token }));
      slots = normalizeSlots(data);
      slotsShare = data && typeof data.share === "string" ? data.share : null;
      renderChoose();
    } catch (e) {
      list.replaceChildren();
      handleBookingError(e);
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }

  function clinicsOf(rows) {
    const by = new Map();
    for (const r of rows) {
      if (!by.has(r.clinic_id)) by.set(r.clinic_id, { clinic_id: r.clinic_id, name: r.name, region: r.region, address: r.address, total: 0, dates: [] });
      const c = by.get(r.clinic_id);
      c.total += Math.max(0, r.remaining);
      c.dates.push(r);
    }
    for (const c of by.values()) c.dates.sort((a, b) => a.date.localeCompare(b.date));
    return [...by.values()];
  }

  function renderChoose() {
    const change = state.goal === "change";
    $("h-choose").textContent = t(change ? "chooseHeadingChange" : "chooseHeading");
    $("choose-lead").textContent = t(slotsShare === "pool" ? "chooseLeadPool" : "chooseLead");
    const regionSelect = $("region");
    const regions = [...new Set(slots.map((r) => r.region).filter(Boolean))].sort();
    const chosenRegion = regionSelect.value;
    regionSelect.replaceChildren(el("option", { value: "", text: t("allRegions") }),
      ...regions.map((r) => el("option", { value: r, text: regionName(r) })));
    regionSelect.value = regions.includes(chosenRegion) ? chosenRegion : "";
    regionSelect.parentElement.hidden = regions.length < 2;

    const clinics = clinicsOf(slots.filter((r) => !regionSelect.value || r.region === regionSelect.value));
    const list = $("clinic-list");
    if (!clinics.length) {
      list.replaceChildren(el("p", { class: "muted", text: t("noSlots") }));
    } else {
      list.replaceChildren(...clinics.map((c) => {
        const full = c.total <= 0;
        const input = el("input", {
          type: "radio", name: "clinic", value: c.clinic_id, disabled: full,
          checked: state.choice && state.choice.clinic_id === c.clinic_id,
        });
        input.addEventListener("change", () => {
          state.choice = { clinic_id: c.clinic_id, date: null };
          save();
          renderDates();
        });
        return el("label", { class: "choice" + (full ? " soldout" : ""), "data-clinic": c.clinic_id },
          input,
          el("span", {}, el("span", { class: "choice-name", text: c.name }),
            c.address ? el("span", { class: "choice-addr", text: c.address }) : null,
            el("span", { class: "choice-sub", text: regionName(c.region) })),
          el("span", { class: "remaining", text: full ? t("soldOut") : t("remaining", { n: number(c.total) }) }));
      }));
    }
    renderDates();
  }

  function renderDates() {
    const fs = $("date-fieldset");
    const grid = $("date-list");
    const clinicId = state.choice && state.choice.clinic_id;
    const rows = slots.filter((r) => r.clinic_id === clinicId).sort((a, b) => a.date.localeCompare(b.date));
    fs.hidden = !rows.length;
    grid.replaceChildren(...rows.map((r) => {
      const full = r.remaining <= 0;
      const input = el("input", {
        type: "radio", name: "date", value: r.date, disabled: full,
        checked: state.choice && state.choice.date === r.date,
        "aria-label": `${formatDate(r.date)}, ${full ? t("soldOut") : t("remaining", { n: number(r.remaining) })}`,
      });
      input.addEventListener("change", () => {
        state.choice = { clinic_id: clinicId, date: r.date };
        save();
        $("choose-next").disabled = false;
      });
      return el("label", { class: "date", "data-date": r.date },
        input,
        el("span", { class: "date-day", text: formatShortDate(r.date)[0], "aria-hidden": "true" }),
        el("span", { class: "date-wd", text: formatShortDate(r.date)[1], "aria-hidden": "true" }),
        el("span", { class: "date-left", text: full ? t("soldOut") : t("remaining", { n: number(r.remaining) }), "aria-hidden": "true" }));
    }));
    $("choose-next").disabled = !(state.choice && state.choice.clinic_id && state.choice.date);
  }

  RENDER.choose = () => {
    renderChoose();
    loadSlots();
  };

  // ---------------------------------------------------------------- confirmation and booking

  // The booking code is read out (large, grouped); the reservation id is for the record.
  const CODE_ROWS = { f_reservation: "code", f_reservationId: "id" };

  function summaryRows(target, rows) {
    target.replaceChildren(...rows.filter(([, v]) => v != null && v !== "")
      .flatMap(([k, v]) => [el("dt", { text: t(k) }), el("dd", { text: v, class: CODE_ROWS[k] || null })]));
  }

  function clinicLabel(id, fallback) {
    const c = clinicNames[id];
    return c ? c.name : fallback || id;
  }

  RENDER.confirm = () => {
    const change = state.goal === "change";
    $("h-confirm").textContent = t(change ? "confirmHeadingChange" : "confirmHeading");
    $("confirm-submit").textContent = t(change ? "confirmSubmitChange" : "confirmSubmit");
    const c = state.choice || {};
    summaryRows($("confirm-summary"), [
      ["f_clinic", clinicLabel(c.clinic_id)],
      ["f_address", clinicNames[c.clinic_id] && clinicNames[c.clinic_id].address],
      ["f_region", clinicNames[c.clinic_id] && regionName(clinicNames[c.clinic_id].region)],
      ["f_date", formatDate(c.date)],
      ["f_method", state.method && methodLabel(state.method)],
    ]);
    document.querySelector("#view-confirm .hint").textContent = t(change ? "confirmHintChange" : "confirmHint");
  };

  async function confirmBooking() {
    const button = $("confirm-submit");
    const c = state.choice;
    if (!c || !c.clinic_id || !c.date) return show("choose");
    const admission = freshAdmission();
    if (!admission) return enqueue();
    busy(button, true);
    const change = state.goal === "change" && state.reservation;
    const what = [change ? "change" : "book", c.clinic_id, c.date].join(" ");
    try {
      const codeBefore = change ? state.reservation.code : null;
      const key = attemptKey(what);
      const res = change
        ? await api("PUT", "/v1/reservations/" + encodeURIComponent(state.reservation.id), { token: admission, body: { clinic_id: c.clinic_id, date: c.date }, key })
        : await api("POST", "/v1/reservations", { token: admission, body: { clinic_id: c.clinic_id, date: c.date }, key });
      settleKey(what);
      state.admissionUsed = true;
      state.reservation = normalizeReservation(res) || { id: state.reservation && state.reservation.id, clinic_id: c.clinic_id, date: c.date };
      state.lastDone = change ? "change" : "book";
      // A change is a new reservation: say whether its code changed (it does, with a new id).
      state.codeChange = change && state.reservation.code
        ? { from: codeBefore || state.reservation.replaces_code, to: state.reservation.code }
        : null;
      state.choice = null;
      save();
      busy(button, false);
      show("done");
    } catch (e) {
      busy(button, false);
      settleKey(what, e);
      handleBookingError(e);
    }
  }

  // What to do when a booking-side call is refused. The server's answer decides; the page
  // only routes the person to where they can act on it.
  function handleBookingError(e) {
    if (!(e instanceof ApiError)) return showError(e);
    switch (e.code) {
      case "invalid_token":
      case "admission_required":
      case "admission_expired":
        state.admission = null;
        save();
        if (!sessionToken()) return reverify();
        showAlert(() => t("admissionGone"), { code: e.code });
        $("queue-rejoin").hidden = false;
        return enqueueAfterNotice();
      case "sold_out":
        show("choose", { keepAlert: true, focus: false });
        return showError(e);
      case "already_reserved":
        state.goal = "view";
        save();
        loadReservation().then(() => showError(e));
        return;
      default:
        return showError(e);
    }
  }

  // After an admission was refused the person needs a new place in the queue; they go there
  // with the reason on screen.
  async function enqueueAfterNotice() {
    const keep = alertShown;
    await enqueue();
    if (state.view === "queue" && keep) showAlert(keep.text, keep);
  }

  // ---------------------------------------------------------------- done and my reservation

  function normalizeReservation(d) {
    if (d == null) return null;
    if (Array.isArray(d)) {
      const active = d.find((r) => !r.status || /active|confirmed|reserved/.test(String(r.status))) || null;
      return normalizeReservation(active);
    }
    if (Object.prototype.hasOwnProperty.call(d, "reservation")) return normalizeReservation(d.reservation);
    if (Array.isArray(d.reservations)) return normalizeReservation(d.reservations);
    const id = d.reservation_id ?? d.id;
    if (id == null) return null;
    return {
      id: String(id),
      code: d.reservation_code ?? null,
      replaces_code: d.replaces_code ?? null,
      clinic_id: d.clinic_id != null ? String(d.clinic_id) : null,
      clinic_name: d.clinic_name ?? (d.clinic && d.clinic.name) ?? null,
      region: d.region ?? null,
      clinic_address: d.clinic_address ?? null,
      date: d.date ?? null,
      status: d.status ?? d.state ?? null,
      change: d.change && typeof d.change === "object" ? d.change : null,
    };
  }

  function reservationRows(r) {
    return [
      ["f_reservation", r.code ? formatCode(r.code) : r.id],
      ["f_reservationId", r.code ? r.id : null],
      ["f_clinic", r.clinic_name || clinicLabel(r.clinic_id)],
      ["f_address", r.clinic_address || (clinicNames[r.clinic_id] && clinicNames[r.clinic_id].address)],
      ["f_region", regionName(r.region || (clinicNames[r.clinic_id] && clinicNames[r.clinic_id].region))],
      ["f_date", formatDate(r.date)],
      ["f_status", r.status && !/active|confirmed|reserved/.test(r.status) ? r.status : t("st_confirmed")],
    ];
  }

  RENDER.done = () => {
    const change = state.lastDone === "change";
    $("h-done").textContent = t(change ? "doneHeadingChange" : "doneHeading");
    summaryRows($("done-summary"), state.reservation ? reservationRows(state.reservation) : []);
    const note = $("done-code-note");
    const moved = change ? state.codeChange : null;
    note.hidden = !moved;
    if (moved) {
      // Each code on one line: "{from}" and "{to}" are split out of the sentence as spans.
      const changed = moved.from && moved.from !== moved.to;
      const codes = changed ? { from: formatCode(moved.from), to: formatCode(moved.to) } : { code: formatCode(moved.to) };
      const text = t(changed ? "codeChanged" : "codeKept", Object.fromEntries(Object.keys(codes).map((k) => [k, `\u0000${k}\u0000`])));
      note.replaceChildren(...text.split("\u0000").map((part, i) => (i % 2 ? el("span", { class: "nowrap", text: codes[part] }) : part)));
    }
  };

  function renderManage() {
    const r = state.reservation;
    $("manage-card").setAttribute("aria-busy", "false");
    $("manage-empty").hidden = !!r;
    summaryRows($("manage-summary"), r ? reservationRows(r) : []);
    // Cancel and change only when the server says they are open (the change window); otherwise
    // when they open, or that they no longer can.
    const shut = !!(r && r.change && r.change.open === false);
    $("manage-cancel").hidden = !r || shut;
    $("manage-change").hidden = !r || shut;
    const note = $("manage-change-note");
    note.hidden = !shut;
    if (shut) {
      note.textContent = r.change.opens_at
        ? t("changeOpensAt", { when: formatLocal(r.change.opens_at) })
        : t("changeClosed");
    }
    $("manage-book").hidden = !!r;
    $("cancel-confirm").hidden = true;
  }

  RENDER.manage = renderManage;

  async function loadReservation() {
    try {
      const data = await withTokens([freshAdmission(), sessionToken(), state.admission], (token) => api("GET", "/v1/reservations/me", { token }));
      state.reservation = normalizeReservation(data);
      save();
      show("manage");
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        state.reservation = null;
        save();
        return show("manage");
      }
      if (e instanceof ApiError && e.status === 401) {
        // Neither the session nor a live admission is accepted: if the session still works
        // for the queue, the read needs an admission; otherwise the person verifies again.
        if (!freshAdmission() && sessionToken()) return enqueue();
        return reverify();
      }
      showError(e);
    }
  }

  async function cancelReservation() {
    const r = state.reservation;
    if (!r) return loadReservation();
    const button = $("cancel-yes");
    busy(button, true);
    try {
      await withTokens([freshAdmission(), sessionToken()], (token) => api("DELETE", "/v1/reservations/" + encodeURIComponent(r.id), { token }));
      busy(button, false);
      state.reservation = null;
      state.goal = "view";
      save();
      show("manage");
      showAlert(() => t("cancelled"), { info: true });
    } catch (e) {
      busy(button, false);
      if (e instanceof ApiError && e.status === 401 && !freshAdmission() && sessionToken()) {
        state.goal = "cancel";
        save();
        return enqueue();
      }
      state.goal = "view";
      save();
      handleBookingError(e);
    }
  }

  // ---------------------------------------------------------------- wiring

  function startOver() {
    const ticket = state.ticket;
    if (ticket) api("DELETE", "/v1/queue/" + encodeURIComponent(ticket), { token: sessionToken() }).catch(() => {});
    stopPolling();
    state = blank();
    save();
    show("method");
  }

  // Finish: leave the queue if waiting, then forget the tokens, the ticket, the reservation and
  // the device id this tab kept; only the language stays.
  function finish() {
    const ticket = state.ticket;
    if (ticket) api("DELETE", "/v1/queue/" + encodeURIComponent(ticket), { token: sessionToken() }).catch(() => {});
    stopPolling();
    state = blank();
    sessionStorage.clear();
    localStorage.removeItem(STATE_KEY);
    localStorage.removeItem(DEVICE_KEY);
    for (const id of ["rid-front", "rid-back"]) $(id).value = "";
    show("method");
    showAlert(() => t("finished"), { info: true });
  }

  function wire() {
    $("lang-toggle").addEventListener("click", () => {
      lang = lang === "ko" ? "en" : "ko";
      localStorage.setItem(LANG_KEY, lang);
      applyText();
      const alert = alertShown;
      if (RENDER[state.view] && state.view !== "queue" && state.view !== "choose") RENDER[state.view]();
      if (state.view === "queue") renderQueue();
      if (state.view === "choose") renderChoose();
      if (state.view === "verify") RENDER.verify();
      if (state.view === "method") renderToday();
      if (alert) showAlert(alert.text, alert);
      else clearAlert();
    });
    for (const r of document.querySelectorAll('input[name="intent"]')) {
      r.addEventListener("change", () => { state.intent = r.value; save(); });
    }
    $("method-next").addEventListener("click", () => {
      if (!state.method) return;
      // A still-valid session skips a second verification (the server allows one per 10 minutes).
      if (sessionToken()) {
        state.goal = state.intent === "manage" ? "view" : "book";
        save();
        return proceed();
      }
      show("verify");
    });
    for (const b of document.querySelectorAll("[data-go]")) b.addEventListener("click", () => show(b.dataset.go));
    $("verify-form").addEventListener("submit", submitVerify);
    $("rid-front").addEventListener("input", (e) => {
      e.target.value = e.target.value.replace(/\D/g, "").slice(0, 6);
      if (e.target.value.length === 6) $("rid-back").focus();
    });
    $("rid-back").addEventListener("input", (e) => { e.target.value = e.target.value.replace(/\D/g, "").slice(0, 7); });
    $("queue-leave").addEventListener("click", leaveQueue);
    $("queue-rejoin").addEventListener("click", () => { clearAlert(); enqueue(); });
    $("expired-rejoin").addEventListener("click", () => { clearAlert(); enqueue(); });
    $("notyet-finish").addEventListener("click", finish);
    $("region").addEventListener("change", renderChoose);
    $("slots-refresh").addEventListener("click", loadSlots);
    $("choose-back").addEventListener("click", () => show(state.goal === "change" ? "manage" : "method"));
    $("choose-next").addEventListener("click", () => show("confirm"));
    $("confirm-submit").addEventListener("click", confirmBooking);
    $("done-manage").addEventListener("click", () => { state.goal = "view"; save(); loadReservation(); });
    $("done-print").addEventListener("click", () => window.print());
    $("manage-change").addEventListener("click", () => {
      state.goal = "change";
      state.choice = null;
      save();
      proceed();
    });
    $("manage-book").addEventListener("click", () => {
      state.goal = "book";
      state.intent = "book";
      save();
      proceed();
    });
    $("manage-cancel").addEventListener("click", () => {
      $("cancel-confirm").hidden = false;
      $("cancel-no").focus();
    });
    $("cancel-no").addEventListener("click", () => { $("cancel-confirm").hidden = true; $("manage-cancel").focus(); });
    $("cancel-yes").addEventListener("click", () => { state.goal = "cancel"; save(); cancelReservation(); });
    $("start-over").addEventListener("click", startOver);
    $("finish").addEventListener("click", finish);
  }

  function start() {
    applyText();
    wire();
    // Resume where the person was: a ticket keeps its place across a refresh of this tab.
    let view = state.view;
    if (view === "queue" && !state.ticket) view = "method";
    if ((view === "choose" || view === "confirm") && !freshAdmission()) view = "method";
    if (view === "verify" && !state.method) view = "method";
    if (!document.getElementById("view-" + view)) view = "method";
    show(view, { focus: false });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
