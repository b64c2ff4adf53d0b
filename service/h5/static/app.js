// Engage member H5 reference client: plain JS over the public client API (/v1) only.
// URL parameters: app (mini-program appId for the dev login), checkin, wheel, board (keys of
// the campaigns to show), token (an access token minted by the brand's back end).
(function () {
  'use strict';
  var params = new URLSearchParams(location.search);
  var store = window.localStorage;
  var S = {
    access: store.getItem('engage.access') || '',
    refresh: store.getItem('engage.refresh') || '',
    checkin: params.get('checkin') || '',
    wheel: params.get('wheel') || '',
    board: params.get('board') || '',
    wheelView: null,
    spinning: false,
  };
  var $ = function (id) { return document.getElementById(id); };

  function saveTokens(access, refresh) {
    S.access = access || ''; S.refresh = refresh || '';
    store.setItem('engage.access', S.access); store.setItem('engage.refresh', S.refresh);
  }

  function toast(text) {
    var t = $('toast'); t.textContent = text; t.hidden = false;
    clearTimeout(toast.timer); toast.timer = setTimeout(function () { t.hidden = true; }, 2500);
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return 'k' + Date.now() + Math.random().toString(16).slice(2);
  }

  // One request helper: JSON in and out, the error shape unpacked, an expired token refreshed
  // once and the request retried with the same Idempotency-Key.
  function api(method, path, body, retried, idemKey) {
    var headers = { 'Accept': 'application/json' };
    if (S.access) headers['Authorization'] = 'Bearer ' + S.access;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method === 'POST') { idemKey = idemKey || uuid(); headers['Idempotency-Key'] = idemKey; }
    return fetch(path, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (r) {
        return r.text().then(function (text) {
          var data = text ? JSON.parse(text) : null;
          if (r.ok) return data;
          var err = (data && data.error) || { code: 'HTTP_' + r.status, message: text };
          err.status = r.status;
          if (err.code === 'TOKEN_EXPIRED' && !retried && S.refresh) {
            return fetch('/v1/auth/refresh', {
              method: 'POST', headers: { 'Content-Type': 'application/json' },
              body: JSON.stringify({ refreshToken: S.refresh }),
            }).then(function (rr) {
              if (!rr.ok) { logout(); throw err; }
              return rr.json().then(function (t) {
                saveTokens(t.accessToken, t.refreshToken || S.refresh);
                return api(method, path, body, true, idemKey);
              });
            });
          }
          if (err.code === 'TOKEN_INVALID' || err.code === 'UNAUTHENTICATED') logout();
          throw err;
        });
      });
  }

  function problemsText(err) {
    var ps = err.details && err.details.problems;
    if (!ps) return err.message || err.code;
    return ps.map(function (p) { return p.path + ': ' + p.problem; }).join('；');
  }

  // ---------------------------------------------------------------- login
  function showLogin() {
    $('home').hidden = true; $('login').hidden = false;
    $('app-id').value = params.get('app') || store.getItem('engage.app') || '';
  }

  function logout() { saveTokens('', ''); showLogin(); }

  $('dev-login').addEventListener('submit', function (e) {
    e.preventDefault();
    var appId = $('app-id').value.trim();
    store.setItem('engage.app', appId);
    api('POST', '/v1/auth/wechat', { appId: appId, code: 'dev:' + $('openid').value.trim() })
      .then(function (out) { saveTokens(out.accessToken, out.refreshToken); start(); })
      .catch(function (err) { var el = $('login-error'); el.textContent = err.message || err.code; el.hidden = false; });
  });
  $('token-login').addEventListener('submit', function (e) {
    e.preventDefault();
    saveTokens(e.target.token.value.trim(), ''); start();
  });
  $('logout').addEventListener('click', logout);

  // ---------------------------------------------------------------- launch
  function start() {
    $('login').hidden = true; $('home').hidden = false;
    return loadMe()
      .then(function () { return Promise.all([loadCeremonies(), loadCheckin(), loadWheel(), loadBoard(), loadBadges(), loadPrizes()]); })
      .catch(function (err) { if (err && err.code) toast(err.message || err.code); });
  }

  function loadMe() {
    // The one launch call when the service has it; /v1/me otherwise.
    return api('GET', '/v1/me/summary').catch(function (err) {
      if (err.status === 404 || err.status === 405) return api('GET', '/v1/me');
      throw err;
    }).then(function (data) {
      var me = data.me || data.member || data;
      $('me-name').textContent = me.nickname || me.externalId || ('#' + me.id);
      $('me-no').textContent = me.memberNo ? ' No.' + me.memberNo : '';
      var balances = me.balances || data.balances || {};
      $('me-points').textContent = balances.points != null ? balances.points : 0;
      var level = me.level || data.level;
      $('me-level').textContent = level ? level.name : '—';
      // Pick campaign keys from the summary when the URL names none.
      if (!S.checkin && data.checkin) S.checkin = data.checkin.campaign || data.checkin.key || '';
      if (!S.wheel && data.wheels && data.wheels.length) S.wheel = data.wheels[0].key;
    });
  }

  function refreshPoints() {
    return api('GET', '/v1/me').then(function (me) { $('me-points').textContent = me.balances.points; });
  }

  // ---------------------------------------------------------------- ceremonies
  function loadCeremonies() {
    // Pending honours come in groups (one business event, played as one modal); each is
    // acked once played, so a reload never shows it again.
    return api('GET', '/v1/ceremonies/pending').then(function (data) {
      var groups = (data && data.groups) || [];
      return playCeremonies(groups);
    }).catch(function () { /* the service has no ceremonies */ });
  }

  function playCeremonies(groups) {
    if (!groups.length) return null;
    var items = groups[0].ceremonies || [];
    if (!items.length) return playCeremonies(groups.slice(1));
    return new Promise(function (resolve) {
      $('ceremony-title').textContent = items.map(function (c) { return c.headline; }).join(' · ');
      $('ceremony-text').textContent = items.map(function (c) { return c.copy; }).join('\n');
      $('ceremony').hidden = false;
      $('ceremony').dataset.ids = items.map(function (c) { return c.id; }).join(',');
      $('ceremony-ok').onclick = function () {
        $('ceremony').hidden = true;
        Promise.all(items.map(function (c) {
          return api('POST', '/v1/ceremonies/' + encodeURIComponent(c.id) + '/ack').catch(function () {});
        })).then(function () { resolve(playCeremonies(groups.slice(1))); });
      };
    });
  }

  // ---------------------------------------------------------------- check-in
  function loadCheckin() {
    if (!S.checkin) return null;
    return api('GET', '/v1/checkins/' + encodeURIComponent(S.checkin)).then(renderCheckin);
  }

  function renderCheckin(st) {
    $('checkin-panel').hidden = false;
    $('streak').textContent = '连续 ' + st.currentStreak + ' 天 · 累计 ' + st.totalDays + ' 天';
    var cal = $('calendar'); cal.textContent = '';
    var first = new Date(st.calendar.length ? st.calendar[0].date + 'T00:00:00' : Date.now());
    for (var pad = 0; pad < first.getDay(); pad++) cal.appendChild(document.createElement('div'));
    st.calendar.forEach(function (d) {
      var el = document.createElement('div');
      el.className = 'day' + (d.checked ? (d.makeup ? ' makeup' : ' checked') : '') +
        (d.date === st.today ? ' today' : '') + (d.canMakeUp ? ' can' : '');
      el.textContent = String(Number(d.date.slice(8)));
      el.dataset.date = d.date;
      if (d.canMakeUp) {
        el.title = '补签';
        el.addEventListener('click', function () { makeUp(d.date, st.makeup); });
      }
      cal.appendChild(el);
    });
    var btn = $('checkin-btn');
    btn.disabled = st.checkedInToday;
    btn.textContent = st.checkedInToday ? '今日已签到' : '签到';
    var next = st.upcoming && st.upcoming[0];
    $('checkin-note').textContent = next ? '明天签到可得 ' + next.reward.points + ' 积分' : '';
  }

  $('checkin-btn').addEventListener('click', function () {
    var btn = $('checkin-btn'); btn.disabled = true;
    api('POST', '/v1/checkins/' + encodeURIComponent(S.checkin)).then(function (out) {
      toast('签到成功 +' + out.reward.points + ' 积分');
      return Promise.all([loadCheckin(), refreshPoints(), loadCeremonies()]);
    }).catch(function (err) { btn.disabled = false; toast(err.message || err.code); });
  });

  function makeUp(date, rule) {
    var cost = rule && rule.costPoints ? '（消耗 ' + rule.costPoints + ' 积分）' : '';
    if (!window.confirm('补签 ' + date + cost + '？')) return;
    api('POST', '/v1/checkins/' + encodeURIComponent(S.checkin) + '/makeups', { date: date })
      .then(function () { toast('补签成功'); return Promise.all([loadCheckin(), refreshPoints()]); })
      .catch(function (err) { toast(err.message || err.code); });
  }

  // ---------------------------------------------------------------- wheel
  var COLOURS = ['#ffe2b8', '#ffd0c2', '#fff0c9', '#ffc7a8'];

  function loadWheel() {
    if (!S.wheel) return null;
    return api('GET', '/v1/wheels/' + encodeURIComponent(S.wheel)).then(renderWheel);
  }

  function renderWheel(w) {
    S.wheelView = w;
    $('wheel-panel').hidden = false;
    $('wheel-name').textContent = w.name;
    var wheel = $('wheel'); wheel.textContent = '';
    var n = w.prizes.length, step = 360 / n, stops = [];
    w.prizes.forEach(function (p, i) {
      stops.push(COLOURS[i % COLOURS.length] + ' ' + (i * step) + 'deg ' + ((i + 1) * step) + 'deg');
      var slot = document.createElement('div');
      slot.className = 'slot';
      slot.style.transform = 'rotate(' + (i * step + step / 2) + 'deg)';
      var label = document.createElement('span'); label.textContent = p.name;
      slot.appendChild(label); wheel.appendChild(slot);
    });
    wheel.style.background = 'conic-gradient(' + stops.join(',') + ')';
    var left = w.freeSpinsLeftToday;
    $('spin-note').textContent = left > 0 ? '今日免费 ' + left + ' 次' :
      (w.costPoints ? '每次 ' + w.costPoints + ' 积分' : '今日次数已用完');
    var canPay = w.costPoints > 0 && (w.spinsLeftToday === null || w.spinsLeftToday > 0);
    $('spin-btn').disabled = !w.eligible || w.status !== 'open' || (left <= 0 && !canPay);
  }

  var turned = 0;
  $('spin-btn').addEventListener('click', function () {
    if (S.spinning) return;
    S.spinning = true; $('spin-btn').disabled = true;
    api('POST', '/v1/wheels/' + encodeURIComponent(S.wheel) + '/spins').then(function (out) {
      var w = S.wheelView;
      if (out.layoutVersion !== w.layoutVersion) {
        // The slots changed since we drew them: redraw first, then land on the server's slot.
        return loadWheel().then(function () { return land(out); });
      }
      return land(out);
    }).catch(function (err) {
      S.spinning = false; $('spin-btn').disabled = false; toast(err.message || err.code);
    });
  });

  function land(out) {
    var n = S.wheelView.prizes.length, step = 360 / n;
    // The pointer is at the top: turn so the middle of slot `slotIndex` ends under it.
    var target = 360 - (out.slotIndex * step + step / 2);
    turned += 360 * 5 + ((target - turned) % 360 + 360) % 360;
    var wheel = $('wheel');
    wheel.style.transform = 'rotate(' + turned + 'deg)';
    wheel.dataset.slot = String(out.slotIndex);
    return new Promise(function (resolve) {
      var done = function () {
        wheel.removeEventListener('transitionend', done);
        S.spinning = false;
        var p = out.prize;
        $('spin-note').textContent = p.kind === 'nothing' ? p.name : '恭喜获得：' + p.name;
        $('spin-note').dataset.prize = p.key;
        toast(p.kind === 'nothing' ? p.name : '恭喜获得 ' + p.name);
        resolve(Promise.all([loadWheel(), loadPrizes(), refreshPoints(), loadCeremonies()]));
      };
      wheel.addEventListener('transitionend', done);
      setTimeout(done, 4500);
    });
  }

  // ---------------------------------------------------------------- boards
  function loadBoard() {
    if (!S.board) return null;
    var key = encodeURIComponent(S.board);
    return Promise.all([api('GET', '/v1/leaderboards/' + key + '?limit=20'),
      api('GET', '/v1/leaderboards/' + key + '/around-me')]).then(function (pages) {
      $('board-panel').hidden = false;
      var list = $('board'); list.textContent = '';
      var seen = {};
      pages[0].items.concat(pages[1].items || []).forEach(function (it) {
        if (seen[it.rank + ':' + it.member.maskedNickname]) return;
        seen[it.rank + ':' + it.member.maskedNickname] = true;
        var li = document.createElement('li'); if (it.isMe) li.className = 'me';
        var b = document.createElement('b'); b.textContent = it.rank;
        var s = document.createElement('span'); s.textContent = it.member.maskedNickname;
        var v = document.createElement('em'); v.textContent = it.score;
        li.appendChild(b); li.appendChild(s); li.appendChild(v); list.appendChild(li);
      });
      var me = pages[0].me;
      $('my-rank').textContent = me.rank ? '我的排名 ' + me.rank : '暂未上榜';
    });
  }

  // ---------------------------------------------------------------- badges
  function loadBadges() {
    return api('GET', '/v1/me/badges').then(function (data) {
      var items = (data && (data.badges || data.items)) || [];
      $('badges-panel').hidden = false;
      var wall = $('badges'); wall.textContent = '';
      if (!items.length) { var none = document.createElement('div'); none.className = 'badge'; none.textContent = '还没有勋章'; wall.appendChild(none); }
      items.forEach(function (b) {
        var el = document.createElement('div');
        el.className = 'badge' + (b.earnedAt ? ' earned' : '');
        el.textContent = (b.icon && b.icon.length <= 4 ? b.icon + ' ' : '') + (b.name || b.key);
        wall.appendChild(el);
      });
    }).catch(function () { /* no badges feature yet */ });
  }

  // ---------------------------------------------------------------- prizes and claim
  var STATES = { issued: '已发放', won: '待领取', claimed: '待发货', shipped: '已发货' };

  function loadPrizes() {
    return api('GET', '/v1/me/prizes').then(function (data) {
      var list = $('prizes'); list.textContent = '';
      var items = data.items || data;
      if (!items.length) {
        var li = document.createElement('li'); li.textContent = '还没有奖品'; list.appendChild(li);
      }
      items.forEach(function (a) {
        var li = document.createElement('li');
        li.dataset.prize = a.prizeKey;
        var name = document.createElement('span'); name.textContent = a.name + (a.couponCode ? ' ' + a.couponCode : '');
        var state = document.createElement('small'); state.textContent = STATES[a.state] || a.state;
        li.appendChild(name); li.appendChild(state);
        if (a.kind === 'physical' && a.state === 'won') {
          var b = document.createElement('button'); b.textContent = '领取';
          b.addEventListener('click', function () { openClaim(a.id); });
          li.appendChild(b);
        }
        list.appendChild(li);
      });
    });
  }

  function openClaim(id) {
    var f = $('claim-form'); f.hidden = false; f.awardId.value = id; $('claim-error').hidden = true;
  }

  $('claim-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var f = e.target;
    var body = { name: f.name.value.trim(), phone: f.phone.value.trim(),
      address: { province: f.province.value.trim(), city: f.city.value.trim(), detail: f.detail.value.trim() } };
    api('POST', '/v1/me/prizes/' + f.awardId.value + '/claim', body).then(function () {
      f.hidden = true; toast('已提交，等待发货'); return loadPrizes();
    }).catch(function (err) { var el = $('claim-error'); el.textContent = problemsText(err); el.hidden = false; });
  });

  // ---------------------------------------------------------------- boot
  if (params.get('token')) saveTokens(params.get('token'), '');
  if (S.access) start(); else showLogin();
})();
