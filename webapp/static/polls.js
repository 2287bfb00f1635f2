// 서울시 엠보팅: fills a GPS poll's hidden latitude/longitude from the browser's geolocation API.
"use strict";

(() => {
  const button = document.getElementById("locate");
  if (!button) return;
  const status = document.getElementById("locate-status");
  const latitude = document.getElementById("lat");
  const longitude = document.getElementById("lon");
  const say = (text) => { status.textContent = text; };
  button.hidden = false;
  button.addEventListener("click", () => {
    if (!("geolocation" in navigator)) {
      say(button.dataset.unsupported);
      return;
    }
    button.disabled = true;
    say(button.dataset.waiting);
    navigator.geolocation.getCurrentPosition(
      (position) => {
        latitude.value = position.coords.latitude.toFixed(6);
        longitude.value = position.coords.longitude.toFixed(6);
        button.disabled = false;
        say(button.dataset.ok);
      },
      () => {
        button.disabled = false;
        say(button.dataset.failed);
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 },
    );
  });
})();
