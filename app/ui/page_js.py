"""Browser-side behaviour the page needs (run once when the page loads)."""

# - the theme follows the browser's preference (light or dark) unless the person chose one with the
#   switch in Settings (remembered in this browser);
# - Enter anywhere on the page starts the chain (text fields submit by themselves; multi-line
#   fields and buttons keep their own meaning of Enter); Esc is Stop/Next, Shift+Esc Stop all,
#   Alt+N the next token;
# - the transcript follows a streaming answer while the person is at its end (scrolling up stops
#   that; scrolling back down resumes it);
# - short start/end sounds made by the browser (Web Audio), unless turned off;
# - the reading-aloud queue (voice_panel): each new WAV plays after the one playing.
PAGE_JS = """
() => {
  const chosenTheme = localStorage.getItem('chain-studio-theme');
  const prefersDark = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
  document.body.classList.toggle('dark', chosenTheme ? chosenTheme === 'dark' : prefersDark);
  const click = (selector) => { const button = document.querySelector(selector); if (button) button.click(); };
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !event.isComposing) {
      event.preventDefault();
      click(event.shiftKey ? '#stop-all' : '#stop-next');
      return;
    }
    if (event.altKey && !event.ctrlKey && !event.metaKey && event.code === 'KeyN') {
      event.preventDefault();
      click('#next-token');
      return;
    }
    if (event.key !== 'Enter' || event.shiftKey || event.isComposing) return;
    const target = event.target;
    const tag = (target && target.tagName) || '';
    if (tag === 'TEXTAREA' || tag === 'INPUT' || tag === 'BUTTON' || tag === 'SELECT') return;
    if (target && target.isContentEditable) return;
    const start = document.querySelector('#start');
    if (start) { event.preventDefault(); start.click(); }
  });
  // Follow the streaming answer: the transcript box scrolls to its end as text arrives, unless
  // the person scrolled up to read.
  const follow = { stick: true };
  const watchTranscript = () => {
    const box = document.querySelector('#transcript');
    if (!box) { setTimeout(watchTranscript, 300); return; }
    box.addEventListener('scroll', () => {
      follow.stick = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
    });
    new MutationObserver(() => {
      if (follow.stick) box.scrollTop = box.scrollHeight;
    }).observe(box, { childList: true, subtree: true, characterData: true });
  };
  watchTranscript();
  // Reading aloud: WAVs made by the server play one after another in #speech-audio.
  const speech = { queue: [], playing: false };
  const player = () => document.querySelector('#speech-audio');
  const playNext = () => {
    const audio = player();
    const url = speech.queue.shift();
    if (!audio || !url) { speech.playing = false; return; }
    audio.src = url;
    const save = document.querySelector('#speech-save');
    if (save) save.href = url;
    const box = document.querySelector('#speech-player');
    if (box) box.style.display = 'flex';
    speech.playing = true;
    audio.onended = playNext;
    audio.play().catch(() => { /* autoplay refused: the controls are there */ });
  };
  window.chainStudioSpeak = (url) => {
    window.chainStudioSpoken = (window.chainStudioSpoken || 0) + 1;
    speech.queue.push(url);
    if (!speech.playing) playNext();
  };
  window.chainStudioSpeechNext = () => {
    const audio = player();
    if (audio && speech.playing) { audio.pause(); playNext(); }
  };
  window.chainStudioSpeechStop = () => {
    speech.queue = [];
    const audio = player();
    if (audio) audio.pause();
    speech.playing = false;
  };
  window.chainStudioSound = (kind) => {
    const enabled = document.querySelector('#sounds input');
    if (enabled && !enabled.checked) return;
    window.chainStudioSoundsPlayed = (window.chainStudioSoundsPlayed || 0) + 1;
    window.chainStudioSoundKinds = (window.chainStudioSoundKinds || []).concat([kind]);
    try {
      const context = new (window.AudioContext || window.webkitAudioContext)();
      const tone = context.createOscillator();
      const gain = context.createGain();
      tone.frequency.value = kind === 'end' ? 660 : 880;  // 'token': a higher beep; 'end': a lower chime
      gain.gain.value = 0.05;
      tone.connect(gain); gain.connect(context.destination);
      tone.start(); tone.stop(context.currentTime + 0.12);
    } catch (error) { /* no audio device: stay silent */ }
  };
  // Programs tab: a click on a sampled token shows its top-K after top-P (and, when the model gave
  // it, shades the tokens before it by its attention). One box for the page, out of Gradio's way.
  const escapeHtml = (text) => String(text).replace(/[&<>"]/g, (ch) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'})[ch]);
  document.addEventListener('click', (event) => {
    if (event.target.closest && event.target.closest('#program-token-detail .close')) {
      document.getElementById('program-token-detail').remove();
      return;
    }
    const token = event.target.closest && event.target.closest('.cs-sampled[data-detail]');
    if (!token) return;
    const detail = JSON.parse(token.getAttribute('data-detail'));
    let box = document.getElementById('program-token-detail');
    if (!box) {
      box = document.createElement('div');
      box.id = 'program-token-detail';
      document.body.appendChild(box);
    }
    const rows = detail.alts.map(([text, id, p]) => `<tr${id === detail.id ? ' class="picked"' : ''}><td>${escapeHtml(JSON.stringify(text))}</td><td>${id}</td><td>${(100 * p).toFixed(1)}%</td></tr>`).join('');
    const context = token.closest('.cs-context');
    context.querySelectorAll('.cs-token').forEach((el) => { el.style.boxShadow = ''; });
    token.style.boxShadow = '0 0 0 2px #1565c0';
    let attention = '<div class="note">No attention for this token (asked with return_attention=True, where the model gives it).</div>';
    if (detail.attention) {
      const weights = detail.attention;
      const top = Math.max(...weights, 1e-9);
      const position = Number(token.dataset.pos);
      context.querySelectorAll('.cs-token').forEach((el) => {
        const at = Number(el.dataset.pos);
        if (at < position && at < weights.length) {
          el.style.boxShadow = `inset 0 -1.2em rgba(255, 140, 0, ${(0.85 * weights[at] / top).toFixed(3)})`;
          el.classList.add('cs-attended');
        }
      });
      attention = `<div class="note">Context shaded by this token's attention (orange: most attended; max ${(100 * top).toFixed(1)}%).</div>`;
    }
    box.innerHTML = `<div class="head"><b>${escapeHtml(JSON.stringify(detail.text))}</b> · id ${detail.id} · p=${Number(detail.prob).toFixed(3)} <button class="close" title="Close">×</button></div>`
      + `<table><tr><th>top-K after top-P</th><th>id</th><th>p</th></tr>${rows}</table>${attention}`;
  });
}
"""

# The run's sound cues ("token:3,end:3": answer 3's first token, then its end), as the original
# played them: a beep at each answer's first token, a chime at its end.
SOUND_CUES_JS = """(cues) => {
  const kinds = (cues || '').split(',').filter((cue) => !cue.startsWith('#')).map((cue) => cue.split(':')[0]);
  // One queue for the page: cues that arrive close together play in order, spaced out.
  const queue = window.chainStudioSoundQueue = window.chainStudioSoundQueue || [];
  queue.push(...kinds);
  const next = () => {
    const kind = queue.shift();
    if (!kind) { window.chainStudioSoundBusy = false; return; }
    if (window.chainStudioSound) window.chainStudioSound(kind);
    setTimeout(next, 160);
  };
  if (!window.chainStudioSoundBusy) { window.chainStudioSoundBusy = true; next(); }
  return cues;
}"""
COPY_JS = "(text) => { navigator.clipboard.writeText(text || ''); return text; }"
THEME_TOGGLE_JS = """() => {
  const dark = !document.body.classList.contains('dark');
  document.body.classList.toggle('dark', dark);
  localStorage.setItem('chain-studio-theme', dark ? 'dark' : 'light');
}"""

# Sizes and places the default theme does not give: readable footers and code status, a transcript
# box that scrolls by itself (so the page layout stays put at 1280x720), compact prompt items, the
# learning table, dropdowns that show their whole text.
PAGE_CSS = """
#program-view .cs-token { white-space: pre-wrap; border-radius: 2px; padding: 0 1px; font-family: monospace; }
#program-view .cs-sampled, #program-side-by-side .cs-sampled { cursor: pointer; }
#program-view .cs-prompted { background: var(--background-fill-secondary); }
.cs-context { margin: 6px 0 10px; border-left: 3px solid var(--border-color-primary); padding-left: 8px; }
.cs-context-head { font-size: 0.85rem; color: var(--body-text-color-subdued); margin-bottom: 2px; }
.cs-context-tokens { line-height: 1.9; color: #111; }
#program-token-detail { position: fixed; right: 16px; bottom: 16px; z-index: 1000; max-height: 50vh; overflow-y: auto;
  background: var(--background-fill-primary, #fff); border: 1px solid var(--border-color-primary, #ccc);
  border-radius: 6px; padding: 8px 10px; box-shadow: 0 4px 16px rgba(0,0,0,.2); font-size: 0.9rem; min-width: 260px; }
#program-token-detail table { border-collapse: collapse; margin-top: 4px; }
#program-token-detail td, #program-token-detail th { padding: 1px 8px; text-align: left; font-family: monospace; }
#program-token-detail tr.picked { font-weight: bold; }
#program-token-detail .close { float: right; border: none; background: none; cursor: pointer; font-size: 1.1rem; }
#program-token-detail .note { font-size: 0.8rem; color: var(--body-text-color-subdued); margin-top: 4px; }
#transcript { max-height: calc(100vh - 140px); overflow-y: auto; padding-right: 6px; }
#transcript sub, #code-output sub, #code-status, .code-status { font-size: 0.85rem; vertical-align: baseline; }
#transcript .asked { color: var(--body-text-color-subdued); font-size: 0.9rem; margin: 2px 0 6px;
  white-space: pre-wrap; }
#transcript details.asked summary { cursor: pointer; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#transcript details.reasoning { margin: 4px 0; color: var(--body-text-color-subdued); }
#transcript details.reasoning summary { cursor: pointer; font-style: italic; }
#transcript .reasoning-text { white-space: pre-wrap; font-size: 0.9rem; border-left: 3px solid var(--border-color-primary);
  padding-left: 8px; }
#transcript .asked-full { white-space: pre-wrap; max-height: 16em; overflow-y: auto; }
.small-note, .small-note p { font-size: 0.85rem; color: var(--body-text-color-subdued); }
#status { min-height: 1.6em; }
#speech-player-box, #status, #plan-preview, #code-on-banner { padding-top: 0; padding-bottom: 0; min-height: 0; }
#speech-player-box { border: none; background: none; }
#speech-player-box:not(:has(#speech-player[style*="flex"])) { display: none; }
#transcript-tools { align-items: center; gap: 6px; }
.learning-table-box { overflow-x: auto; }
table.learning-table { border-collapse: collapse; font-size: 0.85rem; width: auto; }
table.learning-table th, table.learning-table td { padding: 2px 8px; text-align: right; white-space: nowrap;
  border-bottom: 1px solid var(--border-color-primary); writing-mode: horizontal-tb; }
table.learning-table th { cursor: help; }
table.learning-table td:nth-child(3) { text-align: left; font-family: monospace; }
table.learning-table tr.chosen td { font-weight: 600; }
#model-pick input, #history-set-aside input { text-overflow: ellipsis; }
#model-pick ul.options li, #tts-voice ul.options li { white-space: normal; }
#keyboard-shortcuts { font-size: 0.8rem; color: var(--body-text-color-subdued); }
table.next-tokens { border-collapse: collapse; font-size: 0.85rem; width: auto; }
table.next-tokens th, table.next-tokens td { padding: 2px 10px; border-bottom: 1px solid var(--border-color-primary);
  white-space: nowrap; text-align: left; }
.prob-bar { height: 0.6em; background: var(--color-accent); opacity: 0.6; vertical-align: middle; }
#next-tokens-result .token, #answer-diff .token { font-family: monospace; white-space: pre-wrap; padding: 0 1px;
  margin: 0 1px; border-radius: 3px; background: var(--background-fill-secondary); }
#next-tokens-result .token.parts, #answer-diff .token.parts { background: hsla(0, 80%, 50%, 0.45);
  outline: 2px solid hsla(0, 80%, 45%, 0.9); }
#answer-diff .text-diff { white-space: pre-wrap; font-size: 0.85rem; }
#answer-diff .diff-line.added { background: hsla(120, 60%, 45%, 0.2); }
#answer-diff .diff-line.removed { background: hsla(0, 70%, 50%, 0.2); }
table.grid { border-collapse: collapse; font-size: 0.85rem; }
table.grid th, table.grid td { padding: 4px 8px; border: 1px solid var(--border-color-primary); vertical-align: top; }
table.grid .grid-answer { white-space: pre-wrap; max-width: 28em; }
table.grid .grid-metrics, table.grid .grid-score small { color: var(--body-text-color-subdued); font-size: 0.8rem; }
table.grid .grid-score.unrated { color: var(--body-text-color-subdued); font-style: italic; }
"""
