"use strict";(self.rspackChunknbrepro=self.rspackChunknbrepro||[]).push([[266],{646(e,r,t){var o=t(601),n=t.n(o),a=t(314),s=(t.n(a))()(n());s.push([e.id,`/* nbrepro's status item (JupyterLab's status bar, or the notebook toolbar in Notebook 7).
   Only theme variables: it follows the light and dark themes. */
.nbrepro-StatusItem {
  display: flex;
  align-items: center;
  padding: 0 6px;
  cursor: pointer;
  color: var(--jp-ui-font-color1);
  font-family: var(--jp-ui-font-family);
  font-size: var(--jp-ui-font-size1);
  white-space: nowrap;
}

.nbrepro-StatusItem:hover {
  background-color: var(--jp-layout-color2);
}

.nbrepro-StatusItem.nbrepro-mod-empty {
  display: none;
}

.nbrepro-StatusItem .nbrepro-errors {
  color: var(--jp-error-color1);
}

.nbrepro-StatusItem .nbrepro-warnings {
  color: var(--jp-warn-color1);
}

.jp-Toolbar-item .nbrepro-StatusItem {
  height: 100%;
  border-radius: var(--jp-border-radius);
}

.nbrepro-Summary table {
  border-collapse: collapse;
  margin: 6px 0;
}

.nbrepro-Summary th,
.nbrepro-Summary td {
  border: var(--jp-border-width) solid var(--jp-border-color2);
  padding: 2px 6px;
  text-align: left;
  vertical-align: top;
}
`,""]),t.d(r,{},{A:s})},314(e){e.exports=function(e){var r=[];return r.toString=function(){return this.map(function(r){var t="",o=void 0!==r[5];return r[4]&&(t+="@supports (".concat(r[4],") {")),r[2]&&(t+="@media ".concat(r[2]," {")),o&&(t+="@layer".concat(r[5].length>0?" ".concat(r[5]):""," {")),t+=e(r),o&&(t+="}"),r[2]&&(t+="}"),r[4]&&(t+="}"),t}).join("")},r.i=function(e,t,o,n,a){"string"==typeof e&&(e=[[null,e,void 0]]);var s={};if(o)for(var i=0;i<this.length;i++){var c=this[i][0];null!=c&&(s[c]=!0)}for(var p=0;p<e.length;p++){var u=[].concat(e[p]);o&&s[u[0]]||(void 0!==a&&(void 0===u[5]||(u[1]="@layer".concat(u[5].length>0?" ".concat(u[5]):""," {").concat(u[1],"}")),u[5]=a),t&&(u[2]&&(u[1]="@media ".concat(u[2]," {").concat(u[1],"}")),u[2]=t),n&&(u[4]?(u[1]="@supports (".concat(u[4],") {").concat(u[1],"}"),u[4]=n):u[4]="".concat(n)),r.push(u))}},r}},601(e){e.exports=function(e){return e[1]}},665(e,r,t){t.r(r);var o=t(72),n=t.n(o),a=t(825),s=t.n(a),i=t(659),c=t.n(i),p=t(56),u=t.n(p),l=t(540),d=t.n(l),f=t(113),m=t.n(f),v=t(646),h={};h.styleTagTransform=m(),h.setAttributes=u(),h.insert=c().bind(null,"head"),h.domAPI=s(),h.insertStyleElement=d(),n()(v.A,h);let b=v.A&&v.A.locals?v.A.locals:void 0;t.d(r,{},{default:b})},72(e){var r=[];function t(e){for(var t=-1,o=0;o<r.length;o++)if(r[o].identifier===e){t=o;break}return t}function o(e,o){for(var n={},a=[],s=0;s<e.length;s++){var i=e[s],c=o.base?i[0]+o.base:i[0],p=n[c]||0,u="".concat(c," ").concat(p);n[c]=p+1;var l=t(u),d={css:i[1],media:i[2],sourceMap:i[3],supports:i[4],layer:i[5]};if(-1!==l)r[l].references++,r[l].updater(d);else{var f=function(e,r){var t=r.domAPI(r);return t.update(e),function(r){r?(r.css!==e.css||r.media!==e.media||r.sourceMap!==e.sourceMap||r.supports!==e.supports||r.layer!==e.layer)&&t.update(e=r):t.remove()}}(d,o);o.byIndex=s,r.splice(s,0,{identifier:u,updater:f,references:1})}a.push(u)}return a}e.exports=function(e,n){var a=o(e=e||[],n=n||{});return function(e){e=e||[];for(var s=0;s<a.length;s++){var i=t(a[s]);r[i].references--}for(var c=o(e,n),p=0;p<a.length;p++){var u=t(a[p]);0===r[u].references&&(r[u].updater(),r.splice(u,1))}a=c}}},659(e){var r={};e.exports=function(e,t){var o=function(e){if(void 0===r[e]){var t=document.querySelector(e);if(window.HTMLIFrameElement&&t instanceof window.HTMLIFrameElement)try{t=t.contentDocument.head}catch(e){t=null}r[e]=t}return r[e]}(e);if(!o)throw Error("Couldn't find a style target. This probably means that the value for the 'insert' parameter is invalid.");o.appendChild(t)}},540(e){e.exports=function(e){var r=document.createElement("style");return e.setAttributes(r,e.attributes),e.insert(r,e.options),r}},56(e,r,t){e.exports=function(e){var r=t.nc;r&&e.setAttribute("nonce",r)}},825(e){e.exports=function(e){if("u"<typeof document)return{update:function(){},remove:function(){}};var r=e.insertStyleElement(e);return{update:function(t){var o,n,a;o="",t.supports&&(o+="@supports (".concat(t.supports,") {")),t.media&&(o+="@media ".concat(t.media," {")),(n=void 0!==t.layer)&&(o+="@layer".concat(t.layer.length>0?" ".concat(t.layer):""," {")),o+=t.css,n&&(o+="}"),t.media&&(o+="}"),t.supports&&(o+="}"),(a=t.sourceMap)&&"u">typeof btoa&&(o+="\n/*# sourceMappingURL=data:application/json;base64,".concat(btoa(unescape(encodeURIComponent(JSON.stringify(a))))," */")),e.styleTagTransform(o,r,e.options)},remove:function(){var e;null===(e=r).parentNode||e.parentNode.removeChild(e)}}}},113(e){e.exports=function(e,r){if(r.styleSheet)r.styleSheet.cssText=e;else{for(;r.firstChild;)r.removeChild(r.firstChild);r.appendChild(document.createTextNode(e))}}}}]);