// genofed portal: the little script the pages use, served by the node itself (no CDN).
// Every page works without it; it only makes the "Copy" buttons of download commands copy.
"use strict";

(function () {
  function announce(message) {
    // The polite live region lets screen readers hear the outcome without moving focus.
    const region = document.getElementById("live");
    if (region) {
      region.textContent = message;
    }
  }

  async function copy(button) {
    const field = document.getElementById(button.dataset.copy);
    if (!field) {
      return;
    }
    let copied = false;
    try {
      await navigator.clipboard.writeText(field.value);
      copied = true;
    } catch (error) {
      field.select(); // older browsers, or a page not served over HTTPS
      copied = Boolean(document.execCommand && document.execCommand("copy"));
    }
    button.dataset.state = copied ? "copied" : "failed";
    announce(copied ? "Command copied." : "Press Ctrl+C to copy the selected command.");
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-copy]");
    if (button) {
      copy(button);
    }
  });
})();
