"""Browser-side behaviour the page needs (run once when the page loads)."""

# - dark theme by default;
# - Enter anywhere on the page starts the chain (text fields submit by themselves; multi-line
#   fields and buttons keep their own meaning of Enter);
# - short start/end sounds made by the browser (Web Audio), unless turned off.
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
