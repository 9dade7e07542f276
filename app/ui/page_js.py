"""Browser-side behaviour the page needs (run once when the page loads)."""

# - dark theme by default;
# - Enter anywhere on the page starts the chain (text fields submit by themselves; multi-line
#   fields and buttons keep their own meaning of Enter);
# - short start/end sounds made by the browser (Web Audio), unless turned off;
# - the reading-aloud queue (voice_panel): each new WAV plays after the one playing.
PAGE_JS = """
() => {
  document.body.classList.add('dark');
  document.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' || event.shiftKey || event.isComposing) return;
    const target = event.target;
    const tag = (target && target.tagName) || '';
    if (tag === 'TEXTAREA' || tag === 'INPUT' || tag === 'BUTTON' || tag === 'SELECT') return;
    if (target && target.isContentEditable) return;
    const start = document.querySelector('#start');
    if (start) { event.preventDefault(); start.click(); }
  });
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
    try {
      const context = new (window.AudioContext || window.webkitAudioContext)();
      const tone = context.createOscillator();
      const gain = context.createGain();
      tone.frequency.value = kind === 'end' ? 660 : 880;
      gain.gain.value = 0.05;
      tone.connect(gain); gain.connect(context.destination);
      tone.start(); tone.stop(context.currentTime + 0.12);
    } catch (error) { /* no audio device: stay silent */ }
  };
}
"""

SOUND_START_JS = "(...args) => { window.chainStudioSound && window.chainStudioSound('start'); return args; }"
SOUND_END_JS = "(...args) => { window.chainStudioSound && window.chainStudioSound('end'); return args; }"
COPY_JS = "(text) => { navigator.clipboard.writeText(text || ''); return text; }"
