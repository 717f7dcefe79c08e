// The popup: the state of the run (watching, waiting for the person to
// solve a verification, decided, ordered, failed) and its log, as the service worker keeps them in chrome.storage.session
// ({state, log: [{at, text}]}), updated while the popup is open.
const STATES = ['watching', 'waiting', 'decided', 'ordered', 'failed'];

const stateEl = document.getElementById('state');
const logEl = document.getElementById('log');

function render({state, log}) {
  const known = STATES.includes(state) ? state : 'idle';
  stateEl.textContent = known;
  stateEl.dataset.state = known;
  logEl.replaceChildren();
  for (const entry of Array.isArray(log) ? log.slice(-100) : []) {
    const item = document.createElement('li');
    const at = new Date(entry.at);
    item.textContent =
        (Number.isNaN(at.getTime()) ? '' : at.toLocaleTimeString() + ' ') + entry.text;
    logEl.append(item);
  }
  logEl.scrollTop = logEl.scrollHeight;
}

async function refresh() {
  render(await chrome.storage.session.get(['state', 'log']));
}

chrome.storage.session.onChanged.addListener(refresh);
refresh();

// Standalone mode on the active tab, with the saved strategy and profile.
document.getElementById('start').addEventListener('click', async () => {
  const [tab] = await chrome.tabs.query({active: true, currentWindow: true});
  const answer = document.getElementById('answer');
  if (!tab) {
    answer.textContent = 'no active tab';
    return;
  }
  const r = await chrome.runtime.sendMessage({standalone: 'start', tab: tab.id});
  answer.textContent = r && r.ok ? '' : (r ? r.message : 'no answer');
});
