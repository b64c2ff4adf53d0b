// Engage member H5 reference client: plain JS over the public client API (/v1) only.
// URL parameters: app (mini-program appId for the dev login), checkin, wheel, board, pk (keys
// of the campaigns to show; by default the first live one of each from GET /v1/me/summary),
// token (an access token minted by the brand's back end), invite (an invitation code).
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
    pk: params.get('pk') || '',
    invite: params.get('invite') || '',
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
      .then(function () { return loadRitual(); })
      .then(function () { return Promise.all([loadCeremonies(), loadCheckin(), loadWheel(), loadBoard(), loadPk(), loadBadges(), loadPrizes()]); })
      .catch(function (err) { if (err && err.code) toast(err.message || err.code); });
  }

  function loadMe() {
    // The one launch call when the service has it; /v1/me otherwise.
    return api('GET', '/v1/me/summary').catch(function (err) {
      if (err.status === 404 || err.status === 405) return api('GET', '/v1/me');
      throw err;
    }).then(function (data) {
      var me = data.me || data.member || data;
      showMember(me);
      var balances = me.balances || data.balances || {};
      $('me-points').textContent = balances.points != null ? balances.points : 0;
      var level = me.level || data.level;
      $('me-level').textContent = level ? level.name : '—';
      S.ritualStatus = data.ritual ? data.ritual.status : '';
      // Pick campaign keys from the summary when the URL names none.
      var live = data.campaigns || {};
      if (!S.checkin && data.checkins && data.checkins.length) S.checkin = data.checkins[0].key;
      // Every live wheel and PK is reachable: a chooser lists them (the first is shown).
      var names = {};
      (data.wheels || []).forEach(function (w) { names[w.key] = w.name; });
      S.wheels = (live.wheels || (data.wheels || []).map(function (w) { return w.key; }));
      S.wheelNames = names;
      S.pks = live.pks || [];
      if (!S.wheel && S.wheels.length) S.wheel = S.wheels[0];
      if (!S.board && live.boards && live.boards.length) S.board = live.boards[0];
      if (!S.pk && S.pks.length) S.pk = S.pks[0];
      renderPicker('wheel-pick', S.wheels, S.wheel, names, function (key) { S.wheel = key; S.lastResult = ''; $('spin-note').textContent = ''; return loadWheel(); });
      renderPicker('pk-pick', S.pks, S.pk, {}, function (key) { S.pk = key; S.pkJoined = ''; return loadPk(); });
    });
  }

  // A row of buttons, one per live campaign of a kind (hidden when there is only one).
  function renderPicker(id, keys, current, names, choose) {
    var box = $(id);
    if (!box) return;
    box.textContent = '';
    box.hidden = keys.length < 2;
    keys.forEach(function (key) {
      var b = document.createElement('button');
      b.type = 'button'; b.dataset.key = key; b.textContent = names[key] || key;
      if (key === current) b.className = 'on';
      b.addEventListener('click', function () {
        Array.prototype.forEach.call(box.children, function (x) { x.className = x === b ? 'on' : ''; });
        Promise.resolve(choose(key)).catch(function (err) { toast(err.message || err.code); });
      });
      box.appendChild(b);
    });
  }

  // The member number as the brand shows it (NO.001024) once the member has joined;
  // before that, a hint to finish the entry ritual. The internal id is never shown.
  function showMember(me) {
    var number = me.memberNumber || (me.memberNo ? 'NO.' + me.memberNo : '');
    $('me-name').textContent = me.nickname || number || '新会员';
    $('me-no').textContent = number ? (me.nickname ? number : '会员号') : '完成入会获取会员号';
    $('me-no').dataset.memberNo = me.memberNo || '';
  }

  // ---------------------------------------------------------------- entry ritual
  var STEP_FIELDS = { nickname: '昵称', avatarUrl: '头像地址', birthday: '生日', phone: '手机号' };

  function loadRitual() {
    if (S.ritualStatus === 'none' || S.ritualStatus === 'completed') { $('ritual-panel').hidden = true; return null; }
    return api('GET', '/v1/ritual').then(renderRitual).catch(function (err) {
      if (err.code === 'RITUAL_NOT_CONFIGURED' || err.status === 404) { $('ritual-panel').hidden = true; return; }
      throw err;
    });
  }

  function renderRitual(r) {
    S.ritual = r;
    if (r.status === 'completed' || !r.next) { $('ritual-panel').hidden = true; return; }
    $('ritual-panel').hidden = false;
    $('ritual-title').textContent = r.title || '入会仪式';
    var list = $('ritual-steps'); list.textContent = '';
    r.steps.forEach(function (st) {
      var li = document.createElement('li');
      li.className = st.done ? 'done' : (st.key === r.next ? 'next' : '');
      li.textContent = st.title || st.key; li.dataset.step = st.key; list.appendChild(li);
    });
    var step = r.steps.filter(function (st) { return st.key === r.next; })[0];
    $('step-title').textContent = step.title || step.key;
    $('step-body').textContent = step.text || step.body || '';
    var box = $('step-fields'); box.textContent = ''; $('ritual-error').hidden = true;
    function add(label, input) { var l = document.createElement('label'); l.textContent = label; l.appendChild(input); box.appendChild(l); return l; }
    function check(name, text) {
      var l = document.createElement('label'); l.className = 'check';
      var c = document.createElement('input'); c.type = 'checkbox'; c.name = name;
      l.appendChild(c); l.appendChild(document.createTextNode(text)); box.appendChild(l);
    }
    if (step.kind === 'covenant') check('accept', '我已阅读并同意');
    if (step.kind === 'profile') {
      (step.fields || []).forEach(function (f) {
        var i = document.createElement('input'); i.name = f;
        if (f === 'birthday') { i.type = 'date'; i.min = '1900-01-01'; i.max = new Date().toISOString().slice(0, 10); }
        if (f === 'phone') i.inputMode = 'tel';
        i.required = (step.requiredFields || []).indexOf(f) >= 0;
        add((STEP_FIELDS[f] || f) + (i.required ? ' *' : ''), i);
      });
      if ((step.fields || []).indexOf('phone') >= 0) check('phoneConsent', '同意品牌使用手机号联系我');
    }
    if (step.kind === 'privileges' && step.privileges) {
      var ul = document.createElement('ul');
      step.privileges.forEach(function (p) { var li = document.createElement('li'); li.textContent = p.name || p.title || p.key; ul.appendChild(li); });
      box.appendChild(ul);
    }
    if (step.kind === 'subscription') {
      (step.templateIds || []).forEach(function (id) { check('tmpl:' + id, '订阅通知 ' + id); });
    }
    $('step-btn').textContent = step.kind === 'covenant' ? '同意并继续' : '下一步';
    $('step-btn').dataset.step = step.key;
    var gift = r.gift || {};
    var parts = [];
    if (gift.points) parts.push(gift.points + ' 积分');
    if (gift.growth) parts.push(gift.growth + ' 成长值');
    if (gift.badge) parts.push('勋章');
    $('ritual-gift').textContent = parts.length ? '完成即得入会礼：' + parts.join(' + ') : '';
  }

  $('ritual-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var r = S.ritual; if (!r || !r.next) return;
    var step = r.steps.filter(function (st) { return st.key === r.next; })[0];
    var f = e.target, body = {};
    if (step.kind === 'covenant') { body.accept = !!(f.accept && f.accept.checked); body.covenantVersion = step.covenantVersion || undefined; }
    if (step.kind === 'profile') {
      (step.fields || []).forEach(function (name) { var v = f[name] && f[name].value.trim(); if (v) body[name] = v; });
      if (f.phoneConsent && body.phone) body.phoneConsent = f.phoneConsent.checked;
    }
    if (step.kind === 'subscription') {
      body.acceptedTemplateIds = (step.templateIds || []).filter(function (id) { var c = f['tmpl:' + id]; return c && c.checked; });
    }
    if (S.invite) body.inviteCode = S.invite;
    var btn = $('step-btn'); btn.disabled = true;
    api('POST', '/v1/ritual/steps/' + encodeURIComponent(step.key), body).then(function (out) {
      btn.disabled = false;
      if (out.justCompleted) {
        toast('欢迎加入！会员号 ' + (out.memberNumber || out.memberNo));
        S.ritualStatus = 'completed';
        return Promise.all([loadMe(), loadCeremonies(), loadBadges()]).then(function () { renderRitual(out); });
      }
      renderRitual(out);
    }).catch(function (err) {
      btn.disabled = false;
      var el = $('ritual-error'); el.textContent = problemsText(err); el.hidden = false;
    });
  });

  function refreshPoints() {
    return api('GET', '/v1/me').then(function (me) { $('me-points').textContent = me.balances.points; showMember(me); });
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
    '日一二三四五六'.split('').forEach(function (d) {
      var h = document.createElement('div'); h.className = 'dow'; h.textContent = d; cal.appendChild(h);
    });
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
    var rest = left > 0 ? '今日免费 ' + left + ' 次' :
      (w.costPoints ? '每次 ' + w.costPoints + ' 积分' : '今日次数已用完');
    // The last result stays readable under the wheel (the toast goes after 2.5 s).
    $('spin-note').textContent = (S.lastResult ? S.lastResult + ' · ' : '') + rest;
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
        S.lastResult = p.kind === 'nothing' ? p.name : '恭喜获得：' + p.name;
        $('spin-note').textContent = S.lastResult;
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

  // ---------------------------------------------------------------- team PK
  var PK_STATES = { scheduled: '未开始', live: '进行中', ended: '已结束', settled: '已结算', parked: '暂停' };

  function loadPk() {
    if (!S.pk) return null;
    return api('GET', '/v1/pks/' + encodeURIComponent(S.pk)).then(function (pk) {
      $('pk-panel').hidden = false;
      $('pk-name').textContent = pk.name;
      var left = pk.timeLeftSeconds;
      $('pk-left').textContent = (PK_STATES[pk.state] || pk.state) +
        (pk.state === 'live' && left > 0 ? ' · 剩余 ' + Math.floor(left / 3600) + ' 小时 ' + Math.floor(left % 3600 / 60) + ' 分' : '');
      var list = $('pk-teams'); list.textContent = '';
      // The PK board follows a team change within 10 s (the service caches "my team"):
      // the team just joined shows as mine at once.
      if (!pk.me.teamKey && S.pkJoined) pk.me = { teamKey: S.pkJoined, contribution: 0, rankInTeam: null };
      pk.teams.forEach(function (t) {
        var li = document.createElement('li'); li.dataset.team = t.key;
        if (t.isMine || t.key === pk.me.teamKey) li.className = 'mine';
        var b = document.createElement('b'); b.textContent = t.rank;
        var s = document.createElement('span'); s.textContent = t.name + (pk.winner === t.key ? ' 🏆' : '');
        var small = document.createElement('small'); small.textContent = ' ' + t.headcount + ' 人';
        s.appendChild(small);
        var v = document.createElement('em'); v.textContent = t.score;
        li.appendChild(b); li.appendChild(s); li.appendChild(v);
        if (!pk.me.teamKey && (pk.state === 'live' || pk.state === 'scheduled')) {
          var join = document.createElement('button'); join.textContent = '加入';
          join.className = 'join'; join.dataset.team = t.key;
          join.addEventListener('click', function () { joinTeam(t.key); });
          li.appendChild(join);
        }
        list.appendChild(li);
      });
      $('pk-me').textContent = pk.me.teamKey ? '我的贡献 ' + pk.me.contribution + (pk.me.rankInTeam ? ' · 队内第 ' + pk.me.rankInTeam : '') : '你还不在参赛队伍中';
    }).catch(function (err) { if (err.status !== 404) throw err; });
  }

  function joinTeam(key) {
    api('POST', '/v1/teams/' + encodeURIComponent(key) + '/members', {}).then(function (t) {
      toast('已加入 ' + t.name); S.pkJoined = t.key;
      setTimeout(loadPk, 11000);
      return loadPk();
    }).catch(function (err) { toast(err.message || err.code); });
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
