// The options page: the strategy and the site profile as text, checked as
// they are typed (lib/settings.js: the C++ parsers' messages, with their
// line), saved to chrome.storage.local only when both pass.
import {checkSettings, loadSettings, saveSettings} from './lib/settings.js';

const strategy = document.getElementById('strategy');
const profile = document.getElementById('profile');
const status = document.getElementById('status');

function show(checked) {
  for (const field of ['strategy', 'profile']) {
    const list = document.getElementById(field + '-problems');
    list.replaceChildren();
    for (const p of checked.problems.filter((q) => q.field === field)) {
      const item = document.createElement('li');
      item.textContent = p.message;
      if (p.line > 0) item.dataset.line = String(p.line);
      list.append(item);
    }
  }
}

function say(text, kind) {
  status.textContent = text;
  status.className = kind;
}

function check() {
  const checked = checkSettings(strategy.value, profile.value);
  show(checked);
  say('', '');
  return checked;
}

strategy.addEventListener('input', check);
profile.addEventListener('input', check);
document.getElementById('save').addEventListener('click', async () => {
  const checked = await saveSettings(chrome.storage.local, strategy.value, profile.value);
  show(checked);
  if (checked.ok) {
    say('Saved.', 'saved');
  } else {
    say('Not saved: ' + checked.problems.length + ' problem(s) above.', 'refused');
  }
});

loadSettings(chrome.storage.local).then((saved) => {
  strategy.value = saved.strategyText;
  profile.value = saved.profileText;
  if (saved.strategyText !== '') show(saved);
  document.body.dataset.ready = 'yes';
});
