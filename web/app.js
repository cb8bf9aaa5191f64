// Placeholder: shows the congestion lights. The full page replaces this file.
fetch('/v1/congestion').then(r => r.json()).then(list => {
  const ul = document.getElementById('lights');
  for (const m of list) {
    const li = document.createElement('li');
    li.textContent = `${m.method}: ${m.level} (${m.wait_s.toFixed(1)} s)`;
    ul.appendChild(li);
  }
});
