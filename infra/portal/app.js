// Reference client of the integrations portal API.
//
// Safety rules this file keeps (the page is meant to be hosted as is):
// - every piece of data reaches the DOM through textContent, setAttribute or Node.append(string);
//   nothing is ever parsed as HTML (the CSP's Trusted Types setting makes innerHTML strings throw);
// - no inline handlers or style attributes (the CSP forbids them), so state is expressed with classes,
//   the `hidden` attribute and addEventListener;
// - the bearer token lives in memory and in sessionStorage under one key, so it survives the OAuth
//   round trip but not the browser tab.

const SESSION_KEY = 'integrations-portal.session';
const REQUEST_TIMEOUT_MS = 30_000;
// While a connection is syncing (e.g. the first sync after connecting), refresh its section for a while.
const SYNC_POLL_MS = 5_000;
const SYNC_POLL_LIMIT = 24;

const API_BASE = (document.querySelector('meta[name="integrations-api-base"]')?.getAttribute('content') ?? '')
  .trim()
  .replace(/\/+$/, '');

const VIEW = 'view_integrations';
const MANAGE = 'manage_integrations';

/** Demo identities for the local stack's `POST /dev/token`; `clients` feeds the agency admin's client picker. */
const DEMO_IDENTITIES = [
  {
    id: 'agency-admin',
    label: 'Agency admin (demo-agency)',
    claims: { sub: 'demo-agency-admin', agency_id: 'demo-agency', role: 'agency_admin', permissions: [VIEW, MANAGE] },
    clients: ['client-a', 'client-b'],
  },
  {
    id: 'client-manager',
    label: 'Client user who manages integrations (client-a)',
    claims: {
      sub: 'client-a-manager', agency_id: 'demo-agency', client_id: 'client-a', role: 'client_user',
      permissions: [VIEW, MANAGE],
    },
  },
  {
    id: 'client-viewer',
    label: 'Client user, view only (client-a)',
    claims: {
      sub: 'client-a-viewer', agency_id: 'demo-agency', client_id: 'client-a', role: 'client_user',
      permissions: [VIEW],
    },
  },
  {
    id: 'client-no-view',
    label: 'Client user without integrations access (client-a)',
    claims: {
      sub: 'client-a-noview', agency_id: 'demo-agency', client_id: 'client-a', role: 'client_user',
      permissions: [],
    },
  },
  {
    id: 'agency-staff',
    label: 'Agency staff (demo-agency)',
    claims: { sub: 'demo-agency-staff', agency_id: 'demo-agency', role: 'agency_staff', permissions: [VIEW] },
  },
  {
    id: 'prospect',
    label: 'Prospect (client-a)',
    claims: {
      sub: 'client-a-prospect', agency_id: 'demo-agency', client_id: 'client-a', role: 'prospect',
      permissions: [],
    },
  },
  {
    id: 'starter-admin',
    label: 'Agency admin on the starter plan (starter-agency)',
    claims: { sub: 'starter-agency-admin', agency_id: 'starter-agency', role: 'agency_admin', permissions: [VIEW, MANAGE] },
    clients: ['client-s'],
  },
];

/** Display names for places that only have a provider id (OAuth return, health table, settings). */
const PROVIDER_NAMES = {
  ghl: 'GoHighLevel',
  hubspot: 'HubSpot',
  google_calendar: 'Google Calendar',
  google_calendar_oneway: 'Google Calendar (one-way)',
  calendly: 'Calendly',
  slack: 'Slack',
  outlook_calendar: 'Outlook Calendar',
  icloud_calendar: 'iCloud Calendar',
  gmail: 'Gmail',
  bcc_email: 'BCC logging address',
};

/** Fallback labels; the API sends `status_label` beside every status and that one wins. */
const STATUS_LABELS = {
  connected: 'Connected',
  not_connected: 'Not connected',
  error: 'Error',
  syncing: 'Syncing',
};

/** What the page says when a card is not available and the API gave no reason. */
const NOT_AVAILABLE = 'Not available. Ask your agency if you need it.';

/** The advice for failures a retry may fix (the OAuth return carries only a code, so the words live here). */
const RETRY_ADVICE = 'Try again; if it keeps failing, contact your agency.';

const SECTIONS = [
  {
    level: 'agency',
    title: 'Agency integrations',
    intro: 'Accounts your agency connects once for its own use.',
  },
  {
    level: 'client',
    title: 'Client integrations',
    intro: 'Accounts connected for the whole client team.',
  },
  {
    level: 'user',
    title: 'My calendars and mail',
    intro: 'Your own calendars and mailboxes. Only you can see and change these.',
  },
];

// Connection error codes a new consent fixes; those connections get a Reconnect button.
const REAUTH_CODES = new Set(['reauth_required', 'missing_scopes']);

/**
 * Why a connect attempt failed, keyed by every `code` the OAuth callback can put on return_to
 * (FlowErrorCode in integrations/oauth/errors.py; a unit test keeps the two lists equal).
 * `missing` is the consent screen's labels of the boxes left unticked, never scope strings.
 */
const RESULT_MESSAGES = {
  access_denied: (name) => `${name} was not connected: access was declined on ${name}'s screen. Connect again and allow access.`,
  missing_scopes: (name, missing) =>
    `${name} was not connected: some permissions were not granted${missing ? ` (${missing})` : ''}. `
    + `Connect again and tick every box on ${name}'s consent screen.`,
  session_expired: () =>
    'The connection attempt expired (it lasts 10 minutes and can be used once). Connect again.',
  session_used: () => 'That connection link was already used. Connect again from this page.',
  session_unknown: () => 'That connection link is not valid any more. Connect again from this page.',
  cookie_mismatch: () =>
    'The connection was finished in another browser than the one that started it. Connect again from this page.',
  provider_mismatch: () => 'The connection attempt got mixed up with another one. Connect again from this page.',
  provider_error: (name) => `${name} refused the connection. ${RETRY_ADVICE}`,
  exchange_failed: (name) => `${name} did not complete the connection. ${RETRY_ADVICE}`,
  identity_failed: (name) => `${name} did not tell us which account was connected. ${RETRY_ADVICE}`,
  already_connected: (name) =>
    `Another ${name} account is already connected here. Disconnect it first to connect a different one.`,
  conflicts_with: (name) =>
    `${name} cannot be used together with an integration that is connected. Disconnect that one first.`,
  not_allowed: (name) => `You are not allowed to connect ${name}. Ask your agency if you need it.`,
  internal_error: (name) => `${name} could not be connected because of a problem on our side. ${RETRY_ADVICE}`,
};

const state = {
  /** @type {{token: string, identityId: string|null, label: string, clients: string[], clientId: string|null} | null} */
  session: null,
  /** @type {{show_integrations: boolean, can_manage: boolean, levels: string[]} | null} */
  me: null,
  isAgencyAdmin: false,
  /** @type {Map<string, SectionView>} */
  sections: new Map(),
  health: { cursor: null, generation: 0 },
  /** Consent-screen labels by provider and scope, from the cards (`permissions`). */
  consentLabels: new Map(),
  /** A failed OAuth return that needs the cards' labels before it can be said in words. */
  pendingResult: null,
  /** The connection whose disconnect is being confirmed. */
  pendingDisconnect: null,
  /** @type {ConfigFormState | null} */
  configForm: null,
  icloudLevel: 'user',
  devpanel: {
    /** Whether this page runs on the local stack (GET /dev/health answered); null until known. */
    local: null,
    /** @type {object|null} the appointment owner derived from the signed-in token's claims */
    owner: null,
    /** The appointment being edited: its id and the last version published (null: a new one). */
    appointmentId: null,
    version: 0,
    pollTimer: null,
    polling: false,
    /** Bumped by every start and stop, so a start that finished late does not revive a stopped panel. */
    generation: 0,
    /** The ids of the listed events, so an unchanged list is not rebuilt (open details stay open). */
    shown: '',
    /** The signed-in person's agency: the internal API takes the tenant explicitly. */
    agencyId: '',
    /** The owner and zone of the last availability answer, which its slots are booked for. */
    asked: null,
  },
};

/**
 * @typedef {{level: string, root: HTMLElement, heading: HTMLElement, subtitle: HTMLElement, status: HTMLElement,
 *   grid: HTMLElement, generation: number, pollTimer: number|null, pollCount: number}} SectionView
 * @typedef {{connectionId: string, card: object, fields: Map<string, FieldControl>, generation: number}} ConfigFormState
 * @typedef {{spec: object, input: HTMLElement|null, selects: Map<string, HTMLSelectElement>|null,
 *   error: HTMLElement, requestId: number}} FieldControl
 */

// ---------------------------------------------------------------------------------------------------------------
// DOM helpers

const $ = (id) => {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing element #${id}`);
  return node;
};

/**
 * Create an element. Attributes go through setAttribute, children through append (strings become text nodes),
 * event listeners through `on`. There is deliberately no way to pass HTML.
 */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'on') {
      for (const [event, listener] of Object.entries(value)) node.addEventListener(event, listener);
    } else if (key === 'class') {
      node.className = value;
    } else if (key === 'style' || key.toLowerCase().startsWith('on')) {
      throw new Error(`refusing to set ${key}: the CSP forbids inline styles and handlers`);
    } else if (value === true) {
      node.setAttribute(key, '');
    } else {
      node.setAttribute(key, String(value));
    }
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

/** A string usable inside an id attribute (provider and connection ids come from the API). */
const idPart = (value) => String(value).replace(/[^A-Za-z0-9_-]/g, '_');

const providerName = (provider) => PROVIDER_NAMES[provider] ?? String(provider);

const humanize = (key) => {
  const words = String(key).replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
};

function formatTime(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

function timeElement(iso, fallback) {
  const text = formatTime(iso);
  if (!text) return h('span', { class: 'muted' }, fallback);
  return h('time', { datetime: String(iso) }, text);
}

function statusBadge(status, testid, label) {
  const known = Object.hasOwn(STATUS_LABELS, status) ? status : 'unknown';
  const text = typeof label === 'string' && label ? label : STATUS_LABELS[status] ?? 'Unknown';
  return h(
    'span',
    { class: `badge badge--${known}`, 'data-testid': testid, 'data-status': String(status ?? '') },
    text,
  );
}

/** An error's words and advice from the API (`message`, `advice`); the code stays in a data attribute. */
function errorWords(error) {
  const message = typeof error?.message === 'string' && error.message ? error.message : 'Something went wrong.';
  const advice = typeof error?.advice === 'string' ? error.advice : '';
  return advice ? `${message} ${advice}` : message;
}

function setBusy(button, busy) {
  button.disabled = busy;
  if (busy) button.setAttribute('aria-busy', 'true');
  else button.removeAttribute('aria-busy');
}

function showFieldError(node, message) {
  node.textContent = message ?? '';
  node.hidden = !message;
}

// ---------------------------------------------------------------------------------------------------------------
// Banner

let bannerTimer = null;

/** Show a message in the live region. Errors stay until dismissed; success fades after a while. */
function showBanner(kind, message) {
  const banner = $('banner');
  window.clearTimeout(bannerTimer);
  banner.dataset.kind = kind;
  delete banner.dataset.code;
  banner.className = `banner banner--${kind}`;
  // Errors interrupt; confirmations wait for the screen reader to finish.
  banner.setAttribute('aria-live', kind === 'error' ? 'assertive' : 'polite');
  banner.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  $('banner-text').textContent = message;
  banner.hidden = false;
  if (kind === 'success') bannerTimer = window.setTimeout(hideBanner, 10_000);
}

function hideBanner() {
  window.clearTimeout(bannerTimer);
  $('banner').hidden = true;
  $('banner-text').textContent = '';
}

// ---------------------------------------------------------------------------------------------------------------
// API client

class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** Call the API with the bearer token; resolve to the JSON body (null for 204), reject with ApiError. */
async function api(method, path, { body, query, auth = true } = {}) {
  const url = new URL(`${API_BASE}${path}`, window.location.href);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== null && value !== undefined && value !== '') url.searchParams.set(key, String(value));
  }
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth) {
    if (!state.session) throw new ApiError(401, 'unauthenticated', 'Sign in first.');
    headers.Authorization = `Bearer ${state.session.token}`;
  }
  const controller = new AbortController();
  const timer = window.setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
      cache: 'no-store',
      credentials: 'same-origin',
      redirect: 'error',
    });
  } catch {
    throw new ApiError(0, 'network_error', 'The service could not be reached. Check your connection and try again.');
  } finally {
    window.clearTimeout(timer);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const code = typeof data?.code === 'string' ? data.code : `http_${response.status}`;
    const message = typeof data?.message === 'string' && data.message
      ? data.message
      : `The request failed (HTTP ${response.status}).`;
    if (response.status === 401 && auth) sessionEnded();
    throw new ApiError(response.status, code, message, data?.details);
  }
  return data;
}

const enc = encodeURIComponent;

/** Show an API failure in the banner; 401s already signed the user out with their own message. */
function reportError(err, prefix) {
  if (err instanceof ApiError && err.status === 401) return;
  // The API's message is for people; its code is for programs and stays out of the page's text.
  const message = String(err?.message ?? err);
  showBanner('error', prefix ? `${prefix}: ${message}` : message);
}

// ---------------------------------------------------------------------------------------------------------------
// Session

function loadSession() {
  try {
    const raw = window.sessionStorage.getItem(SESSION_KEY);
    if (!raw) return null;
    const parsed = JSON.parse(raw);
    if (typeof parsed?.token !== 'string' || !parsed.token) return null;
    return {
      token: parsed.token,
      identityId: typeof parsed.identityId === 'string' ? parsed.identityId : null,
      label: typeof parsed.label === 'string' ? parsed.label : 'Signed in',
      clients: Array.isArray(parsed.clients) ? parsed.clients.filter((c) => typeof c === 'string') : [],
      clientId: typeof parsed.clientId === 'string' ? parsed.clientId : null,
    };
  } catch {
    return null;
  }
}

function saveSession() {
  if (state.session) window.sessionStorage.setItem(SESSION_KEY, JSON.stringify(state.session));
  else window.sessionStorage.removeItem(SESSION_KEY);
}

async function signIn(event) {
  event.preventDefault();
  const select = /** @type {HTMLSelectElement} */ ($('signin-role'));
  const identity = DEMO_IDENTITIES.find((candidate) => candidate.id === select.value);
  if (!identity) return;
  const button = /** @type {HTMLButtonElement} */ ($('signin-button'));
  showFieldError($('signin-error'), null);
  setBusy(button, true);
  try {
    const answer = await api('POST', '/dev/token', { body: identity.claims, auth: false });
    if (typeof answer?.token !== 'string' || !answer.token) throw new Error('The token endpoint answered without a token.');
    state.session = {
      token: answer.token,
      identityId: identity.id,
      label: identity.label,
      clients: identity.clients ?? [],
      clientId: identity.clients?.[0] ?? null,
    };
    saveSession();
    hideBanner();
    await showApp();
  } catch (err) {
    const message = err instanceof ApiError && err.status === 0
      ? 'The local token endpoint is not reachable. Is the local stack running (make dev)?'
      : `Sign-in failed: ${err.message}`;
    showFieldError($('signin-error'), message);
  } finally {
    setBusy(button, false);
  }
}

function signOut() {
  state.session = null;
  state.me = null;
  saveSession();
  resetApp();
  showSignIn();
}

function sessionEnded() {
  if (!state.session) return;
  signOut();
  showBanner('error', 'Your session has ended. Sign in again.');
}

function showSignIn({ focus = true } = {}) {
  $('signin').hidden = false;
  $('app').hidden = true;
  $('session-info').hidden = true;
  if (focus) $('signin-role').focus();
}

// ---------------------------------------------------------------------------------------------------------------
// App shell

function resetApp() {
  for (const view of state.sections.values()) window.clearTimeout(view.pollTimer);
  state.sections.clear();
  $('sections').replaceChildren();
  $('integrations-hidden').hidden = true;
  $('client-picker').hidden = true;
  $('health').hidden = true;
  $('settings').hidden = true;
  for (const group of HEALTH_GROUPS) $(`health-rows-${group}`).replaceChildren();
  stopDevPanel();
  for (const id of ['disconnect-dialog', 'config-dialog', 'icloud-dialog']) {
    const dialog = /** @type {HTMLDialogElement} */ ($(id));
    if (dialog.open) dialog.close();
  }
}

async function showApp() {
  resetApp();
  $('signin').hidden = true;
  $('app').hidden = false;
  $('session-info').hidden = false;
  $('session-who').textContent = state.session.label;
  void startDevPanel();
  const loading = $('app-loading');
  loading.hidden = false;
  loading.textContent = 'Loading…';
  let me;
  try {
    me = await api('GET', '/me');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    loading.textContent = '';
    loading.append(
      `Could not load your account: ${err.message} `,
      h('button', { type: 'button', class: 'button', 'data-testid': 'retry-me', on: { click: () => showApp() } }, 'Retry'),
    );
    return;
  }
  loading.hidden = true;
  state.me = {
    show_integrations: Boolean(me?.show_integrations),
    can_manage: Boolean(me?.can_manage),
    levels: Array.isArray(me?.levels) ? me.levels : [],
  };
  if (!state.me.show_integrations) {
    $('integrations-hidden').hidden = false;
    return;
  }
  // Agency-level integrations are only offered to agency admins; they also get health and settings.
  state.isAgencyAdmin = state.me.levels.includes('agency');
  if (state.isAgencyAdmin && state.me.levels.includes('client')) setupClientPicker();
  for (const section of SECTIONS) {
    if (state.me.levels.includes(section.level)) state.sections.set(section.level, buildSection(section));
  }
  if (state.sections.size === 0) {
    $('integrations-hidden').hidden = false;
    return;
  }
  await Promise.all([
    ...[...state.sections.keys()].map((level) => loadSection(level)),
    ...(state.isAgencyAdmin ? [loadHealth(false), loadSettings()] : []),
  ]);
}

function setupClientPicker() {
  const select = /** @type {HTMLSelectElement} */ ($('client-select'));
  const clients = state.session.clients;
  select.replaceChildren(...clients.map((client) => h('option', { value: client }, client)));
  if (!state.session.clientId || !clients.includes(state.session.clientId)) {
    state.session.clientId = clients[0] ?? null;
    saveSession();
  }
  if (state.session.clientId) select.value = state.session.clientId;
  $('client-picker').hidden = clients.length === 0;
}

function onClientPicked() {
  state.session.clientId = /** @type {HTMLSelectElement} */ ($('client-select')).value || null;
  saveSession();
  void loadSection('client');
}

// ---------------------------------------------------------------------------------------------------------------
// Integration sections and cards

function buildSection({ level, title, intro }) {
  const headingId = `section-title-${level}`;
  const subtitle = h('span', { class: 'section__subtitle', 'data-testid': `section-subtitle-${level}` });
  const heading = h('h2', { id: headingId, tabindex: '-1' }, title, subtitle);
  const status = h('div', { class: 'section__status', 'data-testid': `section-status-${level}` });
  const grid = h('div', { class: 'grid', 'data-testid': `grid-${level}` });
  const root = h(
    'section',
    { class: 'section', 'data-testid': `section-${level}`, 'data-level': level, 'aria-labelledby': headingId },
    heading,
    h('p', { class: 'muted section__intro' }, intro),
    status,
    grid,
  );
  $('sections').append(root);
  return { level, root, heading, subtitle, status, grid, generation: 0, pollTimer: null, pollCount: 0 };
}

/** (Re)load one section's cards; a newer load supersedes an older one still in flight. */
async function loadSection(level, { poll = false } = {}) {
  const view = state.sections.get(level);
  if (!view) return;
  window.clearTimeout(view.pollTimer);
  view.pollTimer = null;
  if (!poll) view.pollCount = 0;
  const generation = ++view.generation;
  const query = { level };
  if (level === 'client' && state.isAgencyAdmin) {
    view.subtitle.textContent = state.session.clientId ? ` · ${state.session.clientId}` : '';
    if (!state.session.clientId) {
      view.grid.replaceChildren();
      view.status.replaceChildren(h('p', { class: 'muted' }, 'Choose a client to see its integrations.'));
      return;
    }
    query.client_id = state.session.clientId;
  }
  if (!poll) {
    view.root.setAttribute('aria-busy', 'true');
    view.status.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  }
  let cards;
  try {
    const answer = await api('GET', '/integrations', { query });
    cards = Array.isArray(answer?.integrations) ? answer.integrations : [];
  } catch (err) {
    if (generation !== view.generation || (err instanceof ApiError && err.status === 401)) return;
    view.root.removeAttribute('aria-busy');
    view.status.replaceChildren(
      h(
        'p',
        { class: 'field-error', role: 'alert' },
        `Could not load integrations: ${err.message} `,
        h('button', { type: 'button', class: 'button', on: { click: () => loadSection(level) } }, 'Retry'),
      ),
    );
    return;
  }
  if (generation !== view.generation) return;
  view.root.removeAttribute('aria-busy');
  view.status.replaceChildren();
  // Re-rendering would drop keyboard focus inside the grid; keep it on the same control when it comes back.
  const focusedTestId = view.grid.contains(document.activeElement)
    ? document.activeElement?.getAttribute('data-testid')
    : null;
  rememberConsentLabels(cards);
  view.grid.replaceChildren(...cards.map((card) => renderCard(card, level)));
  if (cards.length === 0) view.status.replaceChildren(h('p', { class: 'muted' }, 'No integrations here yet.'));
  if (focusedTestId) view.grid.querySelector(`[data-testid="${CSS.escape(focusedTestId)}"]`)?.focus();
  scheduleSyncPoll(view, cards);
}

function rememberConsentLabels(cards) {
  for (const card of cards) {
    const labels = new Map();
    for (const permission of Array.isArray(card.permissions) ? card.permissions : []) {
      if (typeof permission?.scope === 'string' && typeof permission.label === 'string') {
        labels.set(permission.scope, permission.label);
      }
    }
    state.consentLabels.set(String(card.provider), labels);
  }
  sayPendingResult();
}

function scheduleSyncPoll(view, cards) {
  // An import runs over several jobs with pauses between them (the provider's rate window): keep
  // looking while it is not done, not only while a run is under way.
  const busy = (c) => c.status === 'syncing' || c.sync?.contacts_import?.state === 'importing';
  const syncing = cards.some((card) => card.status === 'syncing' || (card.connections ?? []).some(busy));
  if (!syncing || view.pollCount >= SYNC_POLL_LIMIT) return;
  view.pollCount += 1;
  view.pollTimer = window.setTimeout(() => loadSection(view.level, { poll: true }), SYNC_POLL_MS);
}

function renderLogo(card) {
  const initials = String(card.name ?? card.provider ?? '?')
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((word) => word[0].toUpperCase())
    .join('');
  const fallback = h('span', { class: 'card__logo card__logo--fallback', 'aria-hidden': 'true' }, initials);
  // Only same-origin paths: the CSP would block anything else, and a broken image helps nobody.
  const url = typeof card.logo_url === 'string' && /^\/(?!\/)/.test(card.logo_url) ? card.logo_url : null;
  if (!url) return fallback;
  const img = h('img', { class: 'card__logo', src: url, alt: '', width: 40, height: 40, decoding: 'async' });
  img.addEventListener('error', () => img.replaceWith(fallback), { once: true });
  return img;
}

function renderCard(card, level) {
  const provider = String(card.provider);
  const available = card.available !== false;
  const connections = Array.isArray(card.connections) ? card.connections : [];
  const canManage = card.can_manage === true;
  const titleId = `card-title-${level}-${idPart(provider)}`;

  const body = [
    h('p', { class: 'card__description' }, card.description ?? ''),
  ];
  if (!available) {
    body.push(
      h(
        'p',
        { class: 'card__unavailable', 'data-testid': `unavailable-${provider}` },
        card.unavailable_reason || NOT_AVAILABLE,
      ),
    );
  }
  const conflict = available && connections.length === 0 && card.conflict ? card.conflict : null;
  const conflictId = `card-conflict-${level}-${idPart(provider)}`;
  if (conflict) {
    body.push(
      h(
        'p',
        { class: 'card__unavailable', id: conflictId, 'data-testid': `conflict-${provider}` },
        conflict.message || 'Another connected integration excludes this one. Disconnect it first.',
      ),
    );
  }
  if (connections.length > 0) {
    body.push(
      h(
        'ul',
        { class: 'connections', 'data-testid': `connections-${provider}`, 'aria-label': `${card.name} accounts` },
        connections.map((connection) => renderConnection(card, level, connection, { available, canManage })),
      ),
    );
  }

  const actions = [];
  if (canManage && available) {
    if (connections.length === 0) {
      actions.push(
        h(
          'button',
          {
            type: 'button',
            class: 'button button--primary',
            'data-testid': `connect-${provider}`,
            'aria-describedby': conflict ? `${titleId} ${conflictId}` : titleId,
            disabled: Boolean(conflict),
            on: { click: (event) => connect(card, level, event.currentTarget) },
          },
          'Connect',
        ),
      );
    } else if (card.multiple_accounts) {
      actions.push(
        h(
          'button',
          {
            type: 'button',
            class: 'button',
            'data-testid': `add-account-${provider}`,
            'aria-describedby': titleId,
            on: { click: (event) => connect(card, level, event.currentTarget) },
          },
          'Add another account',
        ),
      );
    }
  }

  return h(
    'article',
    {
      class: `card${available ? '' : ' card--unavailable'}`,
      'data-testid': `card-${provider}`,
      'data-provider': provider,
      'data-level': level,
      'data-status': String(card.status ?? ''),
      'data-available': String(available),
      'aria-labelledby': titleId,
    },
    h(
      'header',
      { class: 'card__header' },
      renderLogo(card),
      h('h3', { class: 'card__title', id: titleId }, card.name ?? providerName(provider)),
      statusBadge(card.status, `status-${provider}`, card.status_label),
    ),
    body,
    actions.length > 0 ? h('div', { class: 'card__actions' }, actions) : null,
  );
}

// A BCC logging address: the address with a copy button, and the last mail it logged.
function inboundAddress(id, connection) {
  const address = String(connection.inbound_address);
  const copied = h('span', { class: 'muted', role: 'status', 'data-testid': `copied-${id}` }, '');
  const last = connection.last_mail_logged;
  return h(
    'div',
    { class: 'connection__inbound' },
    h(
      'p',
      { class: 'connection__sync' },
      'Put this address in BCC: ',
      h('span', { class: 'inbound-address', 'data-testid': `bcc-address-${id}` }, address),
      ' ',
      h(
        'button',
        {
          type: 'button',
          class: 'button',
          'data-testid': `copy-address-${id}`,
          'aria-label': `Copy ${address}`,
          on: {
            click: async () => {
              try {
                await navigator.clipboard.writeText(address);
                copied.textContent = 'Copied.';
              } catch {
                copied.textContent = 'Select the address and copy it.';
              }
            },
          },
        },
        'Copy',
      ),
      ' ',
      copied,
    ),
    last
      ? h(
          'p',
          { class: 'connection__sync muted', 'data-testid': `last-mail-${id}` },
          'Last mail logged: ',
          h('span', { 'data-testid': `last-mail-subject-${id}` }, last.subject || '(no subject)'),
          ' with ',
          h('span', { 'data-testid': `last-mail-counterpart-${id}` }, last.counterpart || 'nobody'),
          ', ',
          timeElement(last.at, ''),
        )
      : h('p', { class: 'connection__sync muted', 'data-testid': `last-mail-${id}` }, 'No mail logged yet.'),
  );
}

/** A CRM's initial contact import: a bar when the provider told the total, the words always. */
function importProgress(id, imported) {
  const attrs = { class: 'connection__sync muted', 'data-testid': `import-progress-${id}`, 'data-state': imported.state };
  const total = Number(imported.total);
  if (imported.state !== 'importing' || !Number.isFinite(total) || total <= 0) {
    return h('p', attrs, imported.message);
  }
  return h(
    'p',
    attrs,
    h('progress', { max: String(total), value: String(Number(imported.imported) || 0), 'aria-label': 'Contacts imported' }),
    ' ',
    imported.message,
  );
}

function renderConnection(card, level, connection, { available, canManage }) {
  const id = String(connection.id);
  const account = connection.account_label || 'Connected account';
  const parts = [
    h(
      'div',
      { class: 'connection__head' },
      h('span', { class: 'connection__account', 'data-testid': `account-${id}` }, account),
      statusBadge(connection.status, `connection-status-${id}`, connection.status_label),
    ),
    connection.inbound_address
      ? inboundAddress(id, connection)
      : h(
          'p',
          { class: 'connection__sync muted', 'data-testid': `last-sync-${id}` },
          'Last sync: ',
          timeElement(connection.last_sync_at, 'not yet'),
          ...syncSchedule(connection.sync),
        ),
  ];
  const imported = connection.sync?.contacts_import;
  if (imported?.message) {
    parts.push(importProgress(id, imported));
  }
  const pushed = connection.sync?.push_existing;
  if (pushed?.message) {
    parts.push(
      h('p', { class: 'connection__sync muted', 'data-testid': `push-progress-${id}`, 'data-state': pushed.state }, pushed.message),
    );
  }
  const error = connection.error;
  if (error && (error.message || error.code)) {
    parts.push(
      h(
        'p',
        { class: 'connection__error', 'data-testid': `error-${id}`, 'data-code': String(error.code ?? '') },
        errorWords(error),
      ),
    );
  }
  if (canManage) {
    const buttons = [];
    if (available && connection.status === 'error' && REAUTH_CODES.has(error?.code)) {
      buttons.push(
        h(
          'button',
          {
            type: 'button',
            class: 'button button--primary',
            'data-testid': `reconnect-${id}`,
            on: { click: (event) => connect(card, level, event.currentTarget) },
          },
          'Reconnect',
        ),
      );
    }
    if (available && Array.isArray(card.config_schema) && card.config_schema.length > 0) {
      buttons.push(
        h(
          'button',
          {
            type: 'button',
            class: 'button',
            'data-testid': `configure-${id}`,
            'aria-label': `Configure ${account}`,
            on: { click: () => openConfigure(card, level, connection) },
          },
          'Configure',
        ),
      );
    }
    if (available && connection.sync) buttons.push(...syncButtons(card, level, connection));
    buttons.push(
      h(
        'button',
        {
          type: 'button',
          class: 'button button--danger-outline',
          'data-testid': `disconnect-${id}`,
          'aria-label': `Disconnect ${account}`,
          on: { click: () => openDisconnect(card, level, connection) },
        },
        'Disconnect',
      ),
    );
    parts.push(h('div', { class: 'connection__actions' }, buttons));
  }
  return h('li', { class: 'connection', 'data-testid': `connection-${id}`, 'data-status': String(connection.status ?? '') }, parts);
}

/** "· Next sync: …", or "· Paused", after the last sync. */
function syncSchedule(sync) {
  if (!sync) return [];
  if (sync.paused) return [' · Paused'];
  if (sync.syncing) return [' · Syncing now'];
  return sync.next_sync_at ? [' · Next sync: ', timeElement(sync.next_sync_at, '')] : [];
}

/** Sync now, pause / resume, and (calendars) "Push existing data" after a confirmation. */
function syncButtons(card, level, connection) {
  const id = String(connection.id);
  const sync = connection.sync;
  const button = (testid, label, action) =>
    h('button', { type: 'button', class: 'button', 'data-testid': `${testid}-${id}`, on: { click: action } }, label);
  const run = (label, call) => async () => {
    try {
      await call();
      await refreshAfterChange(level);
    } catch (err) {
      reportError(err, label);
    }
  };
  const path = `/connections/${encodeURIComponent(id)}`;
  const buttons = [];
  if (!sync.paused) buttons.push(button('sync-now', 'Sync now', run('Sync now', () => api('POST', `${path}/sync`))));
  buttons.push(
    sync.paused
      ? button('resume-sync', 'Resume sync', run('Resume sync', () => api('PATCH', `${path}/sync`, { body: { paused: false } })))
      : button('pause-sync', 'Pause sync', run('Pause sync', () => api('PATCH', `${path}/sync`, { body: { paused: true } }))),
  );
  if (card.category === 'calendar' && !sync.paused) {
    buttons.push(
      button(
        'push-existing',
        'Push existing data',
        run('Push existing data', async () => {
          const where = connection.account_label || card.name;
          if (!window.confirm(`Push every upcoming appointment to ${where}? Appointments already there are not duplicated.`)) return;
          const progress = await api('POST', `${path}/push-existing`);
          showBanner('success', progress?.message || 'Pushing appointments…');
        }),
      ),
    );
  }
  return buttons;
}

function refreshAfterChange(level) {
  const work = [loadSection(level)];
  if (state.isAgencyAdmin) work.push(loadHealth(false));
  return Promise.all(work);
}

function focusSection(level) {
  state.sections.get(level)?.heading.focus();
}

// ---------------------------------------------------------------------------------------------------------------
// Connect: OAuth round trip, or a credentials dialog for providers without OAuth

/** Providers that connect with a form instead of an OAuth redirect. */
const CREDENTIAL_CONNECTORS = {
  icloud_calendar: (card, level) => openIcloudDialog(level),
  bcc_email: (card, level, button) => reserveBccAddress(card, level, button),
};

/** A BCC logging address needs no sign-in anywhere: reserve it and show it. */
async function reserveBccAddress(card, level, button) {
  const body = { level };
  if (level === 'client' && state.isAgencyAdmin && state.session.clientId) body.client_id = state.session.clientId;
  setBusy(button, true);
  try {
    const answer = await api('POST', '/integrations/bcc_email/connect', { body });
    showBanner('success', `Your BCC logging address: ${String(answer?.account_label ?? '')}`);
    await refreshAfterChange(level);
  } catch (err) {
    reportError(err, `Could not set up ${card.name ?? providerName(card.provider)}`);
  } finally {
    setBusy(button, false);
  }
}

/** Where the OAuth callback sends the browser back: this page, without query or fragment. */
const returnTo = () => `${window.location.origin}${window.location.pathname}`;

async function connect(card, level, button) {
  const custom = CREDENTIAL_CONNECTORS[card.provider];
  if (custom) {
    custom(card, level, button);
    return;
  }
  const body = { level, return_to: returnTo() };
  if (level === 'client' && state.isAgencyAdmin && state.session.clientId) body.client_id = state.session.clientId;
  setBusy(button, true);
  try {
    const answer = await api('POST', `/oauth/${enc(card.provider)}/start`, { body });
    const target = new URL(String(answer?.redirect_url ?? ''), window.location.href);
    // The API chooses the target; still refuse anything that is not a web URL (javascript:, data:, ...).
    if (target.protocol !== 'https:' && target.protocol !== 'http:') throw new Error('The API answered with an unusable redirect.');
    window.location.assign(target.href);
  } catch (err) {
    setBusy(button, false);
    reportError(err, `Could not connect ${card.name ?? providerName(card.provider)}`);
  }
}

/** Turn `?integration=..&result=..` from the OAuth callback into a banner, then drop the query. */
function handleOAuthReturn() {
  const params = new URLSearchParams(window.location.search);
  const provider = params.get('integration');
  const result = params.get('result');
  if (!provider || !result) return;
  const id = provider.slice(0, 64);
  if (result === 'connected') {
    showBanner('success', `${providerName(id)} is connected.`);
  } else {
    const missing = (params.get('missing') ?? '').split(/[\s,]+/).filter(Boolean).slice(0, 20);
    state.pendingResult = { provider: id, code: (params.get('code') ?? '').slice(0, 64), missing };
    sayPendingResult();
  }
  // Keep the page reloadable and bookmarkable without replaying the result.
  window.history.replaceState(window.history.state, '', returnTo() + window.location.hash);
}

/**
 * Say why a connect failed. Missing permissions are named with the consent screen's labels, which come
 * with the cards; until they are loaded the banner says it without them (scope strings are never shown).
 */
function sayPendingResult() {
  const pending = state.pendingResult;
  if (!pending) return;
  const labels = state.consentLabels.get(pending.provider);
  const named = labels ? pending.missing.map((scope) => labels.get(scope)).filter(Boolean) : [];
  const explain = Object.hasOwn(RESULT_MESSAGES, pending.code) ? RESULT_MESSAGES[pending.code] : null;
  const name = providerName(pending.provider);
  const message = explain ? explain(name, named.join('; ')) : `${name} was not connected. ${RETRY_ADVICE}`;
  showBanner('error', message);
  $('banner').dataset.code = pending.code;
  if (labels || pending.missing.length === 0) state.pendingResult = null;
}

function openIcloudDialog(level) {
  state.icloudLevel = level;
  const form = /** @type {HTMLFormElement} */ ($('icloud-form'));
  form.reset();
  for (const id of ['icloud-error', 'icloud-apple-id-error', 'icloud-app-password-error']) showFieldError($(id), null);
  for (const id of ['icloud-apple-id', 'icloud-app-password']) $(id).removeAttribute('aria-invalid');
  /** @type {HTMLDialogElement} */ ($('icloud-dialog')).showModal();
  $('icloud-apple-id').focus();
}

async function submitIcloud(event) {
  event.preventDefault();
  const appleId = /** @type {HTMLInputElement} */ ($('icloud-apple-id'));
  const password = /** @type {HTMLInputElement} */ ($('icloud-app-password'));
  const fieldErrors = { apple_id: [appleId, $('icloud-apple-id-error')], app_password: [password, $('icloud-app-password-error')] };
  for (const [input, error] of Object.values(fieldErrors)) {
    input.removeAttribute('aria-invalid');
    showFieldError(error, null);
  }
  showFieldError($('icloud-error'), null);
  const button = /** @type {HTMLButtonElement} */ ($('icloud-submit'));
  setBusy(button, true);
  try {
    await api('POST', '/integrations/icloud_calendar/connect', {
      body: { apple_id: appleId.value.trim(), app_password: password.value },
    });
    password.value = '';
    /** @type {HTMLDialogElement} */ ($('icloud-dialog')).close();
    showBanner('success', `${providerName('icloud_calendar')} is connected.`);
    await refreshAfterChange(state.icloudLevel);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    let placed = false;
    for (const detail of Array.isArray(err.details) ? err.details : []) {
      const target = fieldErrors[fieldName(detail?.field)];
      if (target && detail?.message) {
        target[0].setAttribute('aria-invalid', 'true');
        showFieldError(target[1], String(detail.message));
        placed = true;
      }
    }
    if (placed) $('icloud-dialog').querySelector('[aria-invalid="true"]')?.focus();
    else showFieldError($('icloud-error'), err.message);
  } finally {
    setBusy(button, false);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Disconnect

function openDisconnect(card, level, connection) {
  const account = connection.account_label || 'this account';
  state.pendingDisconnect = { card, level, connection };
  $('disconnect-title').textContent = `Disconnect ${card.name}`;
  $('disconnect-text').textContent = `Disconnect ${account} from ${card.name}? Workflows that use it will stop.`;
  showFieldError($('disconnect-error'), null);
  /** @type {HTMLDialogElement} */ ($('disconnect-dialog')).showModal();
  // Start on the safe choice.
  $('disconnect-cancel').focus();
}

async function confirmDisconnect(event) {
  event.preventDefault();
  const pending = state.pendingDisconnect;
  if (!pending) return;
  const button = /** @type {HTMLButtonElement} */ ($('disconnect-confirm'));
  setBusy(button, true);
  try {
    await api('DELETE', `/connections/${enc(pending.connection.id)}`);
    state.pendingDisconnect = null;
    /** @type {HTMLDialogElement} */ ($('disconnect-dialog')).close();
    showBanner(
      'success',
      `${pending.connection.account_label || 'The account'} was disconnected from ${pending.card.name}.`,
    );
    await refreshAfterChange(pending.level);
    focusSection(pending.level);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    showFieldError($('disconnect-error'), String(err.message));
  } finally {
    setBusy(button, false);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Configure: a form built from the card's config_schema

/** "Stage" + "is required" -> "Stage is required."; a message that is already a sentence is kept. */
function fieldSentence(label, message) {
  const text = String(message).trim().replace(/\.$/, '');
  if (/^[A-Z]/.test(text)) return `${text}.`;
  return `${label} ${text}.`;
}

/** The config field a validation detail points at: accepts `name`, `config.name`, `name.key` or a loc list. */
function fieldName(field) {
  const path = Array.isArray(field) ? field.map(String) : String(field ?? '').split('.');
  while (path.length > 1 && (path[0] === 'body' || path[0] === 'config')) path.shift();
  return path[0] ?? '';
}

function subKey(field) {
  const path = Array.isArray(field) ? field.map(String) : String(field ?? '').split('.');
  while (path.length > 1 && (path[0] === 'body' || path[0] === 'config')) path.shift();
  return path.length > 1 ? path.slice(1).join('.') : null;
}

async function openConfigure(card, level, connection) {
  const dialog = /** @type {HTMLDialogElement} */ ($('config-dialog'));
  const fieldsBox = $('config-fields');
  const form = {
    connectionId: String(connection.id),
    card,
    level,
    fields: new Map(),
    generation: (state.configForm?.generation ?? 0) + 1,
  };
  state.configForm = form;
  $('config-title').textContent = `Configure ${card.name}`;
  $('config-account').textContent = connection.account_label ?? '';
  showFieldError($('config-error'), null);
  fieldsBox.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  const save = /** @type {HTMLButtonElement} */ ($('config-save'));
  save.disabled = true;
  dialog.showModal();

  let current;
  try {
    current = await api('GET', `/connections/${enc(form.connectionId)}`);
  } catch (err) {
    if (state.configForm !== form) return;
    if (err instanceof ApiError && err.status === 401) return;
    fieldsBox.replaceChildren();
    showFieldError($('config-error'), `Could not load the settings: ${err.message}`);
    return;
  }
  if (state.configForm !== form) return;
  const config = current?.config && typeof current.config === 'object' ? current.config : {};
  const schema = Array.isArray(card.config_schema) ? card.config_schema : [];
  const main = schema.filter((spec) => spec.advanced !== true);
  const advanced = schema.filter((spec) => spec.advanced === true);
  const parts = main.map((spec) => buildConfigField(form, spec, config[spec.name]));
  if (advanced.length > 0) {
    // Sync preferences: collapsed, since their defaults are what most people want.
    parts.push(
      h(
        'details',
        { class: 'advanced', 'data-testid': 'config-advanced' },
        h('summary', { 'data-testid': 'config-advanced-toggle' }, 'Advanced settings'),
        ...advanced.map((spec) => buildConfigField(form, spec, config[spec.name])),
      ),
    );
  }
  fieldsBox.replaceChildren(...parts);
  save.disabled = false;

  // Fill dropdowns: independent ones now, dependent ones once their parent has a value.
  for (const control of form.fields.values()) {
    const { spec } = control;
    if (spec.type === 'select' && spec.depends_on) {
      // The parent's own options are still loading, so start from its saved value.
      const parentValue = config[spec.depends_on];
      void fillDependent(form, control, parentValue ? String(parentValue) : '', config[spec.name]);
    } else if (spec.type === 'select' && !spec.options_source && Array.isArray(spec.choices) && spec.choices.length) {
      fillSelect(control.input, spec.choices, config[spec.name] ?? spec.default ?? '', '— Default —');
    } else if (spec.type === 'select') {
      void fillOptions(form, control, null, config[spec.name]);
    } else if (spec.type === 'multi_select' && spec.options_source) {
      void fillChecks(form, control, config[spec.name]);
    } else if (spec.type === 'mapping' && spec.free_keys) {
      const parentValue = spec.depends_on ? config[spec.depends_on] : null;
      void fillOutcomeChoices(form, control, parentValue ? String(parentValue) : '');
    } else if (spec.type === 'mapping') {
      void fillOptions(form, control, null, config[spec.name]);
    }
  }
  fieldsBox.querySelector('input, select')?.focus();
}

function buildConfigField(form, spec, value) {
  const name = String(spec.name);
  const inputId = `config-input-${idPart(name)}`;
  const errorId = `config-error-${idPart(name)}`;
  const descriptionId = `config-description-${idPart(name)}`;
  const error = h('p', { class: 'field-error', id: errorId, 'data-testid': `config-error-${name}`, hidden: true });
  const description = spec.description
    ? h('p', { class: 'field__description muted', id: descriptionId }, spec.description)
    : null;
  const describedBy = [description ? descriptionId : null, errorId].filter(Boolean).join(' ');
  const control = { spec, input: null, selects: null, error, requestId: 0 };
  form.fields.set(name, control);
  const label = `${spec.label ?? humanize(name)}${spec.required ? ' (required)' : ''}`;

  if (spec.type === 'boolean') {
    const input = h('input', {
      type: 'checkbox',
      id: inputId,
      name,
      'data-testid': `config-field-${name}`,
      'aria-describedby': describedBy,
    });
    // An unset preference shows its default (push, fetch and conflicts are on unless switched off).
    input.checked = value === undefined || value === null ? spec.default === true : value === true;
    control.input = input;
    return h('div', { class: 'field field--check' }, h('label', { class: 'check', for: inputId }, input, label), description, error);
  }

  if (spec.type === 'multi_select') {
    const box = h('div', { class: 'checks', 'data-testid': `config-field-${name}` });
    control.checks = box;
    // The box stands in for the input where errors are marked (aria-invalid) and cleared.
    control.input = box;
    const fixed = Array.isArray(spec.choices) ? spec.choices : [];
    if (fixed.length > 0) {
      const chosen = Array.isArray(value) ? value : Array.isArray(spec.default) ? spec.default : [];
      box.replaceChildren(...fixed.map((choice) => checkRow(name, choice, chosen.includes(choice.value))));
    } else {
      box.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    }
    return h(
      'fieldset',
      { class: 'field', 'aria-describedby': describedBy },
      h('legend', {}, label),
      description,
      box,
      error,
    );
  }

  if (spec.type === 'mapping' && spec.free_keys) {
    return buildFreeMapping(form, control, value, { label, description, describedBy, error });
  }

  if (spec.type === 'mapping') {
    const keys = Array.isArray(spec.mapping_keys) ? spec.mapping_keys : [];
    control.selects = new Map();
    const rows = keys.map((key) => {
      const selectId = `${inputId}-${idPart(key)}`;
      const select = h('select', {
        id: selectId,
        name: `${name}.${key}`,
        'data-testid': `config-field-${name}-${key}`,
        'aria-describedby': describedBy,
        disabled: true,
      });
      control.selects.set(String(key), select);
      return h('div', { class: 'mapping__row' }, h('label', { for: selectId }, humanize(key)), select);
    });
    return h(
      'fieldset',
      { class: 'field mapping', 'data-testid': `config-field-${name}`, 'aria-describedby': describedBy },
      h('legend', {}, label),
      description,
      h('div', { class: 'mapping__rows' }, rows),
      error,
    );
  }

  let input;
  if (spec.type === 'select') {
    input = h('select', {
      id: inputId,
      name,
      'data-testid': `config-field-${name}`,
      'aria-describedby': describedBy,
      required: spec.required === true,
      disabled: true,
    });
    const dependents = () => [...form.fields.values()].filter((other) => other.spec.depends_on === name);
    input.addEventListener('change', () => {
      for (const child of dependents()) void fillDependent(form, child, input.value, null);
    });
  } else if (spec.type === 'integer') {
    input = h('input', {
      type: 'number',
      id: inputId,
      name,
      'data-testid': `config-field-${name}`,
      'aria-describedby': describedBy,
      min: Number.isInteger(spec.minimum) ? spec.minimum : null,
      max: Number.isInteger(spec.maximum) ? spec.maximum : null,
      step: 1,
    });
    const shown = value ?? spec.default;
    input.value = shown === undefined || shown === null ? '' : String(shown);
  } else {
    input = h('input', {
      type: 'text',
      id: inputId,
      name,
      'data-testid': `config-field-${name}`,
      'aria-describedby': describedBy,
      required: spec.required === true,
      maxlength: Number.isInteger(spec.max_length) ? spec.max_length : null,
      autocomplete: 'off',
    });
    input.value = typeof value === 'string' ? value : value == null ? '' : String(value);
  }
  control.input = input;
  return h('div', { class: 'field' }, h('label', { for: inputId }, label), input, description, error);
}

/**
 * A mapping whose keys are typed in (a call outcome → a stage of the chosen pipeline): one row per
 * entry, rows added and removed by the person. The stage lists follow the parent field (the pipeline).
 */
function buildFreeMapping(form, control, value, { label, description, describedBy, error }) {
  const name = String(control.spec.name);
  const rows = h('div', { class: 'mapping__rows', 'data-testid': `config-field-${name}-rows` });
  control.rows = rows;
  // The box stands in for the input where errors are marked (aria-invalid) and cleared.
  control.input = rows;
  control.options = [];
  control.parentValue = '';
  control.rowCount = 0;
  const dependsOn = control.spec.depends_on;
  control.parentLabel = () => String(form.fields.get(dependsOn)?.spec.label ?? humanize(dependsOn ?? 'the parent'));
  const saved = value && typeof value === 'object' ? Object.entries(value) : [];
  for (const [key, stage] of saved) rows.append(freeMappingRow(control, key, String(stage)));
  const add = h(
    'button',
    {
      type: 'button',
      class: 'button',
      'data-testid': `config-field-${name}-add`,
      on: { click: () => rows.append(freeMappingRow(control, '', '')) },
    },
    'Add outcome',
  );
  return h(
    'fieldset',
    { class: 'field mapping', 'data-testid': `config-field-${name}`, 'aria-describedby': describedBy },
    h('legend', {}, label),
    description,
    rows,
    add,
    error,
  );
}

function freeMappingRow(control, key, stage) {
  const name = String(control.spec.name);
  const n = ++control.rowCount;
  const keyInput = h('input', {
    type: 'text',
    maxlength: 64,
    autocomplete: 'off',
    placeholder: 'Call outcome, e.g. booked',
    'aria-label': 'Call outcome',
    'data-testid': `config-field-${name}-key-${n}`,
  });
  keyInput.value = key;
  const select = h('select', { 'aria-label': 'Stage', 'data-testid': `config-field-${name}-stage-${n}` });
  select.dataset.saved = stage;
  fillOutcomeSelect(control, select);
  const row = h('div', { class: 'mapping__row mapping__row--free' });
  const remove = h(
    'button',
    {
      type: 'button',
      class: 'button',
      'aria-label': 'Remove this outcome',
      'data-testid': `config-field-${name}-remove-${n}`,
      on: { click: () => row.remove() },
    },
    'Remove',
  );
  row.append(keyInput, h('div', { class: 'mapping__stage' }, select, remove));
  return row;
}

function fillOutcomeSelect(control, select) {
  if (!control.parentValue) {
    select.replaceChildren(h('option', { value: '' }, `Choose ${control.parentLabel().toLowerCase()} first`));
    select.disabled = true;
    return;
  }
  fillSelect(select, control.options, select.value || select.dataset.saved || '', 'Choose a stage…');
}

/** Load the stages of the chosen pipeline into every row; a newer load wins. */
async function fillOutcomeChoices(form, control, parentValue) {
  const requestId = ++control.requestId;
  showFieldError(control.error, null);
  if (control.parentValue && parentValue !== control.parentValue) {
    // Stages of another pipeline mean nothing in this one.
    for (const select of control.rows.querySelectorAll('select')) {
      select.dataset.saved = '';
      select.value = '';
    }
  }
  control.parentValue = parentValue;
  control.options = [];
  if (parentValue) {
    try {
      const answer = await api('GET', `/connections/${enc(form.connectionId)}/options/${enc(control.spec.name)}`, {
        query: { depends_on: parentValue },
      });
      control.options = (Array.isArray(answer?.options) ? answer.options : [])
        .filter((option) => option && option.value !== undefined && option.value !== null)
        .map((option) => ({ value: String(option.value), label: String(option.label ?? option.value) }));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      if (requestId !== control.requestId || state.configForm !== form) return;
      showFieldError(control.error, `Could not load the choices: ${err.message}`);
    }
  }
  if (requestId !== control.requestId || state.configForm !== form) return;
  for (const select of control.rows.querySelectorAll('select')) fillOutcomeSelect(control, select);
}

/** One checkbox of a multi_select, named `<field>` with the choice's value. */
function checkRow(name, choice, checked) {
  const value = String(choice.value);
  const id = `config-input-${idPart(name)}-${idPart(value)}`;
  const input = h('input', { type: 'checkbox', id, name, value, 'data-testid': `config-field-${name}-${value}` });
  input.checked = checked;
  return h('label', { class: 'check', for: id }, input, String(choice.label ?? value));
}

/** A multi_select whose choices come from the account (the conflict calendars). */
async function fillChecks(form, control, currentValue) {
  const requestId = ++control.requestId;
  showFieldError(control.error, null);
  const chosen = Array.isArray(currentValue) ? currentValue.map(String) : [];
  let options = [];
  try {
    const answer = await api('GET', `/connections/${enc(form.connectionId)}/options/${enc(control.spec.name)}`);
    options = (Array.isArray(answer?.options) ? answer.options : [])
      .filter((option) => option && option.value !== undefined && option.value !== null)
      .map((option) => ({ value: String(option.value), label: String(option.label ?? option.value) }));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    if (requestId !== control.requestId || state.configForm !== form) return;
    showFieldError(control.error, `Could not load the choices: ${err.message}`);
  }
  if (requestId !== control.requestId || state.configForm !== form) return;
  // Keep saved values the account no longer lists, so Save does not drop them silently.
  for (const value of chosen) if (!options.some((o) => o.value === value)) options.push({ value, label: `${value} (current)` });
  control.checks.replaceChildren(...options.map((option) => checkRow(control.spec.name, option, chosen.includes(option.value))));
}

/** A dependent select (e.g. a stage of a pipeline): empty and disabled until its parent has a value. */
async function fillDependent(form, control, parentValue, currentValue) {
  if (control.spec.free_keys) {
    await fillOutcomeChoices(form, control, parentValue || '');
    return;
  }
  const select = /** @type {HTMLSelectElement} */ (control.input);
  if (!parentValue) {
    control.requestId += 1;
    const parent = form.fields.get(control.spec.depends_on);
    const parentLabel = parent?.spec.label ?? humanize(control.spec.depends_on);
    select.replaceChildren(h('option', { value: '' }, `Choose ${parentLabel.toLowerCase()} first`));
    select.disabled = true;
    return;
  }
  await fillOptions(form, control, parentValue, currentValue);
}

/** Load a field's options from the connection and put them in its select(s); a newer load wins. */
async function fillOptions(form, control, dependsOn, currentValue) {
  const requestId = ++control.requestId;
  const selects = control.selects ? [...control.selects.values()] : [control.input];
  for (const select of selects) {
    select.disabled = true;
    select.replaceChildren(h('option', { value: '' }, 'Loading…'));
  }
  showFieldError(control.error, null);
  let options = [];
  let failed = null;
  try {
    const answer = await api('GET', `/connections/${enc(form.connectionId)}/options/${enc(control.spec.name)}`, {
      query: dependsOn ? { depends_on: dependsOn } : undefined,
    });
    options = (Array.isArray(answer?.options) ? answer.options : [])
      .filter((option) => option && option.value !== undefined && option.value !== null)
      .map((option) => ({ value: String(option.value), label: String(option.label ?? option.value) }));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    failed = err;
  }
  if (requestId !== control.requestId || state.configForm !== form) return;
  if (failed) showFieldError(control.error, `Could not load the choices: ${failed.message}`);

  if (control.selects) {
    const current = currentValue && typeof currentValue === 'object' ? currentValue : {};
    for (const [key, select] of control.selects) {
      fillSelect(select, options, current[key] ?? '', '— Not mapped —');
    }
  } else {
    const required = control.spec.required === true;
    fillSelect(control.input, options, currentValue ?? '', required ? 'Choose…' : '— None —');
  }
}

function fillSelect(select, options, current, placeholder) {
  const items = [h('option', { value: '' }, placeholder)];
  const value = current === null || current === undefined ? '' : String(current);
  // Keep a saved value even when the provider no longer lists it (or listing failed), so Save does not erase it.
  if (value && !options.some((option) => option.value === value)) {
    items.push(h('option', { value }, `${value} (current)`));
  }
  items.push(...options.map((option) => h('option', { value: option.value }, option.label)));
  select.replaceChildren(...items);
  select.value = value;
  select.disabled = false;
}

function collectConfig(form) {
  const config = {};
  for (const [name, control] of form.fields) {
    const { spec } = control;
    if (spec.type === 'boolean') {
      config[name] = /** @type {HTMLInputElement} */ (control.input).checked;
    } else if (spec.type === 'multi_select') {
      const values = [...control.checks.querySelectorAll('input[type="checkbox"]:checked')].map((input) => input.value);
      // Fixed choices are always saved (none ticked means none); account calendars left unticked mean the default.
      if (!spec.options_source || values.length > 0) config[name] = values;
    } else if (spec.type === 'integer') {
      const text = /** @type {HTMLInputElement} */ (control.input).value.trim();
      if (text) config[name] = Number(text);
    } else if (spec.type === 'mapping' && spec.free_keys) {
      const mapping = {};
      for (const row of control.rows.querySelectorAll('.mapping__row')) {
        const key = row.querySelector('input').value.trim();
        const stage = row.querySelector('select').value;
        // A row without an outcome or a stage is not saved; the server lower-cases the outcomes.
        if (key && stage) mapping[key] = stage;
      }
      if (Object.keys(mapping).length > 0) config[name] = mapping;
    } else if (spec.type === 'mapping') {
      const mapping = {};
      for (const [key, select] of control.selects) if (select.value) mapping[key] = select.value;
      if (Object.keys(mapping).length > 0) config[name] = mapping;
    } else {
      const value = /** @type {HTMLInputElement|HTMLSelectElement} */ (control.input).value.trim();
      // An empty optional value is left out: the saved config is the whole config, so absent means unset.
      if (value) config[name] = value;
    }
  }
  return config;
}

async function saveConfig(event) {
  event.preventDefault();
  const form = state.configForm;
  if (!form) return;
  for (const control of form.fields.values()) {
    showFieldError(control.error, null);
    for (const node of control.selects ? control.selects.values() : [control.input]) node.removeAttribute('aria-invalid');
  }
  showFieldError($('config-error'), null);
  const button = /** @type {HTMLButtonElement} */ ($('config-save'));
  setBusy(button, true);
  try {
    await api('PATCH', `/connections/${enc(form.connectionId)}`, { body: { config: collectConfig(form) } });
    if (state.configForm !== form) return;
    /** @type {HTMLDialogElement} */ ($('config-dialog')).close();
    showBanner('success', `Settings for ${form.card.name} were saved.`);
    await refreshAfterChange(form.level);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    const unplaced = [];
    const named = [];
    for (const detail of Array.isArray(err.details) ? err.details : []) {
      const control = form.fields.get(fieldName(detail?.field));
      const message = String(detail?.message ?? 'is not valid');
      if (!control) {
        unplaced.push(fieldSentence(humanize(fieldName(detail?.field)), message));
        continue;
      }
      const key = subKey(detail.field);
      const target = control.selects && key ? control.selects.get(key) : control.input;
      target?.setAttribute('aria-invalid', 'true');
      const label = String(control.spec.label ?? humanize(control.spec.name));
      // Name the field in every message: "Stage is required.", not a bare "is required".
      const text = fieldSentence(control.selects && key ? `${label}, ${humanize(key)}` : label, message);
      if (!named.includes(label)) named.push(label);
      showFieldError(control.error, control.error.hidden ? text : `${control.error.textContent} ${text}`);
    }
    const placed = named.length > 0 ? [`Check: ${named.join(', ')}.`] : [];
    if (unplaced.length > 0 || placed.length === 0) {
      showFieldError($('config-error'), [...(placed.length > 0 ? placed : [err.message]), ...unplaced].join(' '));
    } else {
      showFieldError($('config-error'), placed[0]);
    }
    $('config-fields').querySelector('[aria-invalid="true"]')?.focus();
  } finally {
    setBusy(button, false);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Agency admin: health table

/** The health view's two tables: shared connections (clients', agency's) and people's own. */
const HEALTH_TABLES = [
  { group: 'shared', title: 'Client and agency connections', owner: 'Owner' },
  { group: 'personal', title: 'Personal calendars and mail', owner: 'Person' },
];
const HEALTH_GROUPS = HEALTH_TABLES.map((table) => table.group);
const HEALTH_COLUMNS = [
  ['col-owner', null],
  ['col-provider', 'Integration'],
  ['col-account', 'Account'],
  ['col-status', 'Status'],
  ['col-problem', 'Problem and what to do'],
  ['col-sync', 'Last sync'],
  ['col-grant', 'Access renewal'],
];

/** One health table with its title and its "none" line; rows go into `health-rows-<group>`. */
function buildHealthTable({ group, title, owner }) {
  const titleId = `health-${group}-title`;
  return [
    h('h3', { class: 'health__title', id: titleId }, title),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'table table--health', 'data-testid': `health-table-${group}`, 'aria-labelledby': titleId },
        h('colgroup', {}, HEALTH_COLUMNS.map(([column]) => h('col', { class: column }))),
        h('thead', {}, h('tr', {}, HEALTH_COLUMNS.map(([, heading]) => h('th', { scope: 'col' }, heading ?? owner)))),
        h('tbody', { id: `health-rows-${group}`, 'data-testid': `health-rows-${group}` }),
      ),
    ),
    h(
      'p',
      { id: `health-none-${group}`, class: 'muted', 'data-testid': `health-none-${group}`, hidden: true },
      'None on the pages loaded.',
    ),
  ];
}

async function loadHealth(append) {
  const generation = ++state.health.generation;
  const more = /** @type {HTMLButtonElement} */ ($('health-more'));
  $('health').hidden = false;
  showFieldError($('health-error'), null);
  if (!append) state.health.cursor = null;
  const query = {
    status: /** @type {HTMLSelectElement} */ ($('health-status')).value,
    provider: /** @type {HTMLSelectElement} */ ($('health-provider')).value,
    cursor: append ? state.health.cursor : null,
  };
  setBusy(more, true);
  let answer;
  try {
    answer = await api('GET', '/agency/health', { query });
  } catch (err) {
    if (generation !== state.health.generation || (err instanceof ApiError && err.status === 401)) return;
    setBusy(more, false);
    showFieldError($('health-error'), `Could not load connection health: ${err.message}`);
    return;
  }
  if (generation !== state.health.generation) return;
  setBusy(more, false);
  const items = Array.isArray(answer?.items) ? answer.items : [];
  let total = 0;
  for (const group of HEALTH_GROUPS) {
    const rows = $(`health-rows-${group}`);
    const mine = items.filter((item) => (item?.personal === true ? 'personal' : 'shared') === group);
    const rendered = mine.map(renderHealthRow);
    if (append) rows.append(...rendered);
    else rows.replaceChildren(...rendered);
    $(`health-none-${group}`).hidden = rows.childElementCount > 0;
    total += rows.childElementCount;
  }
  state.health.cursor = typeof answer?.next_cursor === 'string' && answer.next_cursor ? answer.next_cursor : null;
  more.hidden = !state.health.cursor;
  $('health-empty').hidden = total > 0;
}

function renderHealthRow(item) {
  const id = String(item.connection_id);
  const problem = item.error && (item.error.message || item.error.advice)
    ? h('span', { 'data-code': String(item.error.code ?? '') }, errorWords(item.error))
    : h('span', { class: 'muted' }, '—');
  const grant = item.grant && typeof item.grant === 'object' ? item.grant : null;
  const renewal = grant
    ? h(
      'span',
      {
        class: grant.lapses_soon ? 'grant grant--soon' : 'grant muted',
        'data-testid': `health-grant-${id}`,
        'data-lapses-soon': String(grant.lapses_soon === true),
      },
      grant.lapses_soon ? h('strong', {}, 'Renew soon. ') : null,
      String(grant.message ?? ''),
      grant.lapses_soon && grant.note ? ` ${grant.note}` : null,
    )
    : h('span', { class: 'muted' }, 'Does not lapse');
  const owner = item.owner && typeof item.owner === 'object' ? item.owner : null;
  return h(
    'tr',
    { 'data-testid': `health-row-${id}`, 'data-status': String(item.status ?? '') },
    h('td', { 'data-testid': `health-owner-${id}` }, owner?.label ?? item.client_id ?? 'Agency'),
    h('td', {}, item.provider_name ?? providerName(item.provider)),
    h('td', { class: 'cell--wrap' }, item.account_label ?? ''),
    h('td', {}, statusBadge(item.status, `health-status-${id}`, item.status_label)),
    h('td', { 'data-testid': `health-problem-${id}` }, problem),
    h('td', {}, timeElement(item.last_sync_at, 'not yet')),
    h('td', {}, renewal),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Agency admin: settings

async function loadSettings() {
  const panel = $('settings');
  panel.hidden = false;
  showFieldError($('settings-error'), null);
  /** @type {HTMLButtonElement} */ ($('settings-save')).disabled = true;
  try {
    fillSettings(await api('GET', '/agency/settings'));
    /** @type {HTMLButtonElement} */ ($('settings-save')).disabled = false;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    showFieldError($('settings-error'), `Could not load the settings: ${err.message}`);
  }
}

function fillSettings(settings) {
  $('settings-tier').textContent = humanize(settings?.tier ?? 'unknown');
  const enabled = Array.isArray(settings?.enabled_providers) ? settings.enabled_providers.map(String) : null;
  /** @type {HTMLInputElement} */ ($('settings-all')).checked = enabled === null;
  /** @type {HTMLInputElement} */ ($('settings-some')).checked = enabled !== null;
  const ids = [...new Set([...Object.keys(PROVIDER_NAMES), ...(enabled ?? [])])];
  $('settings-providers').replaceChildren(
    ...ids.map((id) => {
      const input = h('input', {
        type: 'checkbox',
        name: 'enabled_providers',
        value: id,
        'data-testid': `settings-provider-${id}`,
      });
      input.checked = enabled === null || enabled.includes(id);
      return h('label', { class: 'check' }, input, providerName(id));
    }),
  );
  syncSettingsMode();
  /** @type {HTMLInputElement} */ ($('settings-staff')).checked = settings?.staff_personal_connections === true;
  /** @type {HTMLInputElement} */ ($('settings-contact')).checked = settings?.contact_personal_connections === true;
}

const SETTING_LABELS = {
  enabled_providers: 'Integrations your clients can use',
  staff_personal_connections: 'Personal calendars and mail for staff',
  contact_personal_connections: 'Personal calendars and mail for client users and prospects',
};

const settingLabel = (name) => SETTING_LABELS[name] ?? humanize(name);

function syncSettingsMode() {
  const all = /** @type {HTMLInputElement} */ ($('settings-all')).checked;
  for (const input of $('settings-providers').querySelectorAll('input')) input.disabled = all;
}

async function saveSettings(event) {
  event.preventDefault();
  showFieldError($('settings-error'), null);
  const all = /** @type {HTMLInputElement} */ ($('settings-all')).checked;
  const enabled = all
    ? null
    : [...$('settings-providers').querySelectorAll('input:checked')].map((input) => input.value);
  const body = {
    enabled_providers: enabled,
    staff_personal_connections: /** @type {HTMLInputElement} */ ($('settings-staff')).checked,
    contact_personal_connections: /** @type {HTMLInputElement} */ ($('settings-contact')).checked,
  };
  const button = /** @type {HTMLButtonElement} */ ($('settings-save'));
  setBusy(button, true);
  try {
    const answer = await api('PUT', '/agency/settings', { body });
    if (answer) fillSettings(answer);
    showBanner('success', 'Agency settings were saved.');
    // Availability of every card may have changed.
    await Promise.all([...state.sections.keys()].map((level) => loadSection(level)));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    const details = Array.isArray(err.details)
      ? err.details.map((detail) => fieldSentence(settingLabel(fieldName(detail?.field)), detail?.message ?? 'is not valid'))
      : [];
    showFieldError($('settings-error'), details.length > 0 ? details.join(' ') : String(err.message));
  } finally {
    setBusy(button, false);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Developer panel (local stack only): act as the platform through POST /dev/platform-events, watch GET /dev/events

const DEV_EVENTS_POLL_MS = 2_000;
const DEV_EVENTS_LIMIT = 50;

/** Where the local stack's SMTP listener (SES receiving for the BCC addresses) takes mail. */
function showSmtp(url) {
  const line = $('devpanel-smtp');
  if (!line || typeof url !== 'string' || !url) return;
  const where = url.replace(/^smtp:\/\//, '');
  line.textContent =
    `Inbound mail: send to a BCC address through SMTP on ${where} (python -m smtplib, swaks, any client); ` +
    'other domains are refused with 550. A header "X-Sandbox-Spam: FAIL" simulates a spam verdict.';
  line.hidden = false;
}

/** Whether the page runs on the local stack: only it answers GET /dev/health (asked once per page). */
async function onLocalStack() {
  if (state.devpanel.local === null) {
    try {
      const health = await api('GET', '/dev/health', { auth: false });
      state.devpanel.local = true;
      showSmtp(health?.urls?.smtp);
    } catch {
      state.devpanel.local = false;
    }
  }
  return state.devpanel.local;
}

/** The signed-in token's claims (the page only reads what it was given; the API verifies them). */
function tokenClaims(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = new TextDecoder().decode(Uint8Array.from(atob(payload), (c) => c.charCodeAt(0)));
    const claims = JSON.parse(json);
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

/** The appointment owner the claims describe: agency people are staff, client users and prospects belong to a client. */
function ownerFromClaims(claims) {
  const agency = typeof claims?.agency_id === 'string' ? claims.agency_id : '';
  const user = typeof claims?.sub === 'string' ? claims.sub : '';
  const client = typeof claims?.client_id === 'string' ? claims.client_id : '';
  if (!agency || !user) return null;
  if (claims.role === 'agency_admin' || claims.role === 'agency_staff') {
    return { kind: 'staff', agency_id: agency, user_id: user };
  }
  if (!client) return null;
  const kind = claims.role === 'prospect' ? 'contact' : 'client_user';
  return { kind, agency_id: agency, client_id: client, user_id: user };
}

const OWNER_KINDS = { staff: 'agency staff', client_user: 'client user', contact: 'contact' };

async function startDevPanel() {
  stopDevPanel();
  const generation = ++state.devpanel.generation;
  // Signed out, or signed in again, while the health check was on its way: that start is stale.
  if (!(await onLocalStack()) || !state.session || generation !== state.devpanel.generation) return;
  const owner = ownerFromClaims(tokenClaims(state.session.token));
  state.devpanel.owner = owner;
  $('devpanel-owner').textContent = owner
    ? `${owner.user_id} (${OWNER_KINDS[owner.kind]} at ${owner.client_id ?? owner.agency_id})`
    : 'none: this identity cannot own appointments';
  /** @type {HTMLButtonElement} */ ($('devpanel-upsert')).disabled = !owner;
  newDevAppointment();
  resetDevInternal(tokenClaims(state.session.token), owner);
  $('devpanel').hidden = false;
  state.devpanel.pollTimer = window.setInterval(() => void pollDevEvents(), DEV_EVENTS_POLL_MS);
  await pollDevEvents();
}

function stopDevPanel() {
  state.devpanel.generation += 1;
  window.clearInterval(state.devpanel.pollTimer);
  state.devpanel.pollTimer = null;
  state.devpanel.shown = '';
  $('devpanel').hidden = true;
  $('devpanel-events').replaceChildren();
}

/** A Date as a datetime-local input's value (`YYYY-MM-DDTHH:MM`, the browser's wall time). */
function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** Start a new appointment: a fresh id, version 0, tomorrow at the next full hour for 30 minutes. */
function newDevAppointment() {
  state.devpanel.appointmentId = null;
  state.devpanel.version = 0;
  const start = new Date(Date.now() + 24 * 3600_000);
  start.setMinutes(0, 0, 0);
  start.setHours(start.getHours() + 1);
  /** @type {HTMLInputElement} */ ($('devpanel-title-input')).value = 'Demo appointment';
  /** @type {HTMLInputElement} */ ($('devpanel-start')).value = localInputValue(start);
  /** @type {HTMLInputElement} */ ($('devpanel-end')).value = localInputValue(new Date(start.getTime() + 30 * 60_000));
  /** @type {HTMLInputElement} */ ($('devpanel-zone')).value = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  /** @type {HTMLInputElement} */ ($('devpanel-video')).checked = false;
  showFieldError($('devpanel-error'), null);
  showDevAppointment();
}

function showDevAppointment() {
  const { appointmentId, version } = state.devpanel;
  $('devpanel-current').textContent = appointmentId
    ? `Editing ${appointmentId}, version ${version} published. Publishing again sends version ${version + 1}.`
    : 'A new appointment: the first publish creates it.';
  /** @type {HTMLButtonElement} */ ($('devpanel-delete')).disabled = !appointmentId || !state.devpanel.owner;
}

/** The UTC offset (`+01:00`) of `zone` at the wall time `local` (`YYYY-MM-DDTHH:MM`), or null for an unknown zone. */
function zoneOffset(local, zone) {
  const offsetAt = (instant) => {
    const name = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' })
      .formatToParts(instant)
      .find((part) => part.type === 'timeZoneName')?.value ?? 'GMT';
    const match = /GMT([+-])(\d{2}):(\d{2})/.exec(name);
    return match ? (match[1] === '-' ? -1 : 1) * (Number(match[2]) * 60 + Number(match[3])) : 0;
  };
  const wall = Date.parse(`${local}:00Z`);
  if (Number.isNaN(wall)) return null;
  try {
    // The offset at the wall time read as UTC, then at the instant that gives; twice settles DST edges.
    let minutes = offsetAt(new Date(wall));
    minutes = offsetAt(new Date(wall - minutes * 60_000));
    const sign = minutes < 0 ? '-' : '+';
    const abs = Math.abs(minutes);
    return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  } catch {
    return null;
  }
}

/** The form as an Appointment Upserted detail, or a sentence saying what to fix. */
function devAppointmentDetail(appointmentId, version) {
  const zone = /** @type {HTMLInputElement} */ ($('devpanel-zone')).value.trim();
  const start = /** @type {HTMLInputElement} */ ($('devpanel-start')).value;
  const end = /** @type {HTMLInputElement} */ ($('devpanel-end')).value;
  if (!start || !end) return { problem: 'Start and End are required.' };
  const startOffset = zoneOffset(start, zone);
  const endOffset = zoneOffset(end, zone);
  if (!zone || startOffset === null || endOffset === null) {
    return { problem: `Time zone must be an IANA zone such as Europe/Berlin.` };
  }
  return {
    detail: {
      appointment_id: appointmentId,
      owner: state.devpanel.owner,
      title: /** @type {HTMLInputElement} */ ($('devpanel-title-input')).value,
      start: `${start}:00${startOffset}`,
      end: `${end}:00${endOffset}`,
      time_zone: zone,
      video: /** @type {HTMLInputElement} */ ($('devpanel-video')).checked,
      version,
    },
  };
}

async function publishDevEvent(detailType, detail, button) {
  showFieldError($('devpanel-error'), null);
  setBusy(button, true);
  try {
    await api('POST', '/dev/platform-events', { body: { detail_type: detailType, detail }, auth: false });
    await pollDevEvents();
    return true;
  } catch (err) {
    // The route's message names each refused field and why ("detail.end ... end must be after start").
    showFieldError($('devpanel-error'), String(err.message));
    return false;
  } finally {
    setBusy(button, false);
  }
}

async function publishDevUpsert(event) {
  event.preventDefault();
  if (!state.devpanel.owner) return;
  const appointmentId = state.devpanel.appointmentId ?? `apt-dev-${crypto.randomUUID()}`;
  const version = state.devpanel.version + 1;
  const { detail, problem } = devAppointmentDetail(appointmentId, version);
  if (problem) {
    showFieldError($('devpanel-error'), problem);
    return;
  }
  if (await publishDevEvent('Appointment Upserted', detail, $('devpanel-upsert'))) {
    state.devpanel.appointmentId = appointmentId;
    state.devpanel.version = version;
    showDevAppointment();
  }
}

async function publishDevDelete() {
  const { appointmentId, owner } = state.devpanel;
  if (!appointmentId || !owner) return;
  const version = state.devpanel.version + 1;
  const detail = { appointment_id: appointmentId, owner, version };
  if (await publishDevEvent('Appointment Deleted', detail, $('devpanel-delete'))) newDevAppointment();
}

// The internal API as the platform: POST /dev/internal/availability and /dev/internal/bookings sign the call
// with the dev credentials (SigV4) and the gateway verifies it as it verifies any caller of /internal/*.

/** Fill the form: the signed-in person as owner, tomorrow 09:00–17:00 here, 30-minute slots. */
function resetDevInternal(claims, owner) {
  state.devpanel.agencyId = typeof claims?.agency_id === 'string' ? claims.agency_id : '';
  state.devpanel.asked = null;
  /** @type {HTMLSelectElement} */ ($('devpanel-owner-kind')).value = owner?.kind ?? 'staff';
  /** @type {HTMLInputElement} */ ($('devpanel-owner-client')).value = owner?.client_id ?? '';
  /** @type {HTMLInputElement} */ ($('devpanel-owner-user')).value = owner?.user_id ?? '';
  const start = new Date(Date.now() + 24 * 3600_000);
  start.setHours(9, 0, 0, 0);
  /** @type {HTMLInputElement} */ ($('devpanel-window-start')).value = localInputValue(start);
  /** @type {HTMLInputElement} */ ($('devpanel-window-end')).value = localInputValue(new Date(start.getTime() + 8 * 3600_000));
  /** @type {HTMLInputElement} */ ($('devpanel-slot-minutes')).value = '30';
  /** @type {HTMLInputElement} */ ($('devpanel-availability-zone')).value = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  /** @type {HTMLInputElement} */ ($('devpanel-booking-title')).value = 'Demo booking';
  showFieldError($('devpanel-internal-error'), null);
  $('devpanel-availability-state').textContent = '';
  $('devpanel-booking').textContent = '';
  $('devpanel-slots').replaceChildren();
}

/** The owner the form names (ids left empty are left out; the API says what a kind needs). */
function devInternalOwner() {
  const owner = {
    kind: /** @type {HTMLSelectElement} */ ($('devpanel-owner-kind')).value,
    agency_id: state.devpanel.agencyId,
  };
  const client = /** @type {HTMLInputElement} */ ($('devpanel-owner-client')).value.trim();
  const user = /** @type {HTMLInputElement} */ ($('devpanel-owner-user')).value.trim();
  if (client) owner.client_id = client;
  if (user) owner.user_id = user;
  return owner;
}

/** The form as an availability request, or a sentence saying what to fix. */
function devAvailabilityRequest() {
  const zone = /** @type {HTMLInputElement} */ ($('devpanel-availability-zone')).value.trim();
  const start = /** @type {HTMLInputElement} */ ($('devpanel-window-start')).value;
  const end = /** @type {HTMLInputElement} */ ($('devpanel-window-end')).value;
  const minutes = Number(/** @type {HTMLInputElement} */ ($('devpanel-slot-minutes')).value);
  if (!start || !end) return { problem: 'From and To are required.' };
  if (!Number.isInteger(minutes)) return { problem: 'Slot length must be a whole number of minutes.' };
  const startOffset = zoneOffset(start, zone);
  const endOffset = zoneOffset(end, zone);
  if (!zone || startOffset === null || endOffset === null) {
    return { problem: 'Time zone must be an IANA zone such as Europe/Berlin.' };
  }
  return {
    request: {
      agency_id: state.devpanel.agencyId,
      owners: [devInternalOwner()],
      start: `${start}:00${startOffset}`,
      end: `${end}:00${endOffset}`,
      slot_minutes: minutes,
      time_zone: zone,
    },
  };
}

/** A slot's wall times in the asked zone: `Tue, 1 Jul, 10:00–10:30`. */
function slotLabel(slot, zone) {
  const day = new Intl.DateTimeFormat(undefined, { timeZone: zone, weekday: 'short', day: 'numeric', month: 'short' });
  const time = new Intl.DateTimeFormat(undefined, { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const start = new Date(slot.start);
  return `${day.format(start)}, ${time.format(start)}–${time.format(new Date(slot.end))}`;
}

async function askDevAvailability(event) {
  event?.preventDefault();
  showFieldError($('devpanel-internal-error'), null);
  const { request, problem } = devAvailabilityRequest();
  if (problem) {
    showFieldError($('devpanel-internal-error'), problem);
    return;
  }
  const button = $('devpanel-availability');
  setBusy(button, true);
  try {
    const answer = await api('POST', '/dev/internal/availability', { body: request, auth: false });
    state.devpanel.asked = { owner: request.owners[0], zone: request.time_zone };
    showDevAvailability(answer, request.time_zone);
  } catch (err) {
    showFieldError($('devpanel-internal-error'), String(err.message));
  } finally {
    setBusy(button, false);
  }
}

function showDevAvailability(answer, zone) {
  const free = Array.isArray(answer?.free) ? answer.free : [];
  const reasons = Array.isArray(answer?.reasons) ? answer.reasons : [];
  const said = answer?.state === 'degraded'
    ? `Degraded: ${reasons.map((r) => `${r.code} (${providerName(r.provider)}): ${r.message}`).join('; ')}. Free slots may be wrong.`
    : 'All conflict calendars answered.';
  $('devpanel-availability-state').textContent = `${free.length} free ${free.length === 1 ? 'slot' : 'slots'}. ${said}`;
  $('devpanel-slots').replaceChildren(...free.map((slot, index) => {
    // One key per offered slot: pressing Book again retries the same booking instead of making another.
    const key = `dev-${crypto.randomUUID()}`;
    const button = h('button', { type: 'button', class: 'button', 'data-testid': `devpanel-slot-${index}`, 'data-start': String(slot.start) }, `Book ${slotLabel(slot, zone)}`);
    button.addEventListener('click', () => void bookDevSlot(slot, key, button));
    return h('li', {}, button);
  }));
}

async function bookDevSlot(slot, key, button) {
  const asked = state.devpanel.asked;
  if (!asked) return;
  showFieldError($('devpanel-internal-error'), null);
  setBusy(button, true);
  try {
    const booking = await api('POST', '/dev/internal/bookings', {
      auth: false,
      body: {
        agency_id: state.devpanel.agencyId,
        owner: asked.owner,
        start: slot.start,
        end: slot.end,
        title: /** @type {HTMLInputElement} */ ($('devpanel-booking-title')).value.trim() || 'Demo booking',
        time_zone: asked.zone,
        idempotency_key: key,
      },
    });
    $('devpanel-booking').textContent =
      `Booked ${booking.booking_id}: ${slotLabel(booking, asked.zone)} on ${providerName(booking.provider)} (connection ${booking.connection_id}, event ${booking.event_id}).`;
    await pollDevEvents();
  } catch (err) {
    showFieldError($('devpanel-internal-error'), String(err.message));
  } finally {
    setBusy(button, false);
  }
}

async function pollDevEvents() {
  if (state.devpanel.polling) return;
  state.devpanel.polling = true;
  try {
    const answer = await api('GET', '/dev/events', { query: { limit: DEV_EVENTS_LIMIT }, auth: false });
    showFieldError($('devpanel-events-error'), null);
    const events = Array.isArray(answer?.events) ? answer.events : [];
    const shown = events.map((e) => String(e?.id)).join(' ');
    if (shown === state.devpanel.shown || $('devpanel').hidden) return;
    state.devpanel.shown = shown;
    $('devpanel-events').replaceChildren(...events.map(renderDevEvent));
    $('devpanel-events-none').hidden = events.length > 0;
  } catch (err) {
    showFieldError($('devpanel-events-error'), `Could not load the events: ${err.message}`);
  } finally {
    state.devpanel.polling = false;
  }
}

/** A line naming what an event is about: the appointment, the connection or the agency. */
function devEventSubject(detail) {
  const parts = [];
  if (detail?.appointment_id) parts.push(`appointment ${detail.appointment_id}`);
  if (detail?.version !== undefined) parts.push(`version ${detail.version}`);
  if (detail?.provider) parts.push(providerName(detail.provider));
  if (detail?.connection_id) parts.push(`connection ${detail.connection_id}`);
  if (detail?.change) parts.push(String(detail.change));
  if (detail?.tier) parts.push(`tier ${detail.tier}`);
  if (!detail?.appointment_id && !detail?.connection_id && detail?.agency_id) parts.push(`agency ${detail.agency_id}`);
  return parts.join(' · ');
}

function renderDevEvent(event) {
  const outbound = event?.direction === 'out';
  return h(
    'li',
    {
      class: 'devpanel__event',
      'data-testid': `devpanel-event-${idPart(event?.id ?? '')}`,
      'data-detail-type': String(event?.detail_type ?? ''),
      'data-direction': outbound ? 'out' : 'in',
    },
    h('div', { class: 'devpanel__event-head' },
      h('span', { class: `badge ${outbound ? 'badge--connected' : 'badge--syncing'}` }, outbound ? 'From this service' : 'Sent as the platform'),
      h('strong', {}, String(event?.detail_type ?? '')),
      timeElement(event?.time, ''),
    ),
    h('p', { class: 'muted devpanel__subject' }, devEventSubject(event?.detail)),
    h('details', {},
      h('summary', {}, 'Detail'),
      h('pre', { class: 'devpanel__json' }, JSON.stringify(event?.detail ?? null, null, 2)),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Start

function wire() {
  const select = /** @type {HTMLSelectElement} */ ($('signin-role'));
  select.replaceChildren(...DEMO_IDENTITIES.map((identity) => h('option', { value: identity.id }, identity.label)));
  $('signin-form').addEventListener('submit', signIn);
  $('signout-button').addEventListener('click', () => {
    hideBanner();
    signOut();
  });
  $('banner-close').addEventListener('click', hideBanner);
  $('client-select').addEventListener('change', onClientPicked);

  $('health-groups').replaceChildren(...HEALTH_TABLES.flatMap(buildHealthTable));
  $('health-provider').append(
    ...Object.entries(PROVIDER_NAMES).map(([id, name]) => h('option', { value: id }, name)),
  );
  $('health-filters').addEventListener('change', () => loadHealth(false));
  $('health-filters').addEventListener('submit', (event) => event.preventDefault());
  $('health-more').addEventListener('click', () => loadHealth(true));

  $('settings-form').addEventListener('submit', saveSettings);
  $('settings-all').addEventListener('change', syncSettingsMode);
  $('settings-some').addEventListener('change', syncSettingsMode);

  $('disconnect-form').addEventListener('submit', confirmDisconnect);
  $('disconnect-cancel').addEventListener('click', () => /** @type {HTMLDialogElement} */ ($('disconnect-dialog')).close());
  $('disconnect-dialog').addEventListener('close', () => {
    state.pendingDisconnect = null;
  });

  $('config-form').addEventListener('submit', saveConfig);
  $('config-cancel').addEventListener('click', () => /** @type {HTMLDialogElement} */ ($('config-dialog')).close());
  $('config-dialog').addEventListener('close', () => {
    state.configForm = null;
    $('config-fields').replaceChildren();
  });

  $('devpanel-form').addEventListener('submit', publishDevUpsert);
  $('devpanel-delete').addEventListener('click', () => void publishDevDelete());
  $('devpanel-new').addEventListener('click', newDevAppointment);
  $('devpanel-internal-form').addEventListener('submit', (event) => void askDevAvailability(event));

  $('icloud-form').addEventListener('submit', submitIcloud);
  $('icloud-cancel').addEventListener('click', () => /** @type {HTMLDialogElement} */ ($('icloud-dialog')).close());
  // Never leave a password sitting in a closed dialog.
  $('icloud-dialog').addEventListener('close', () => {
    /** @type {HTMLInputElement} */ ($('icloud-app-password')).value = '';
  });
}

async function start() {
  wire();
  handleOAuthReturn();
  state.session = loadSession();
  if (state.session) await showApp();
  else showSignIn({ focus: false });
  document.documentElement.dataset.ready = 'true';
}

void start();
